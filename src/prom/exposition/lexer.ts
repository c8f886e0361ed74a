/** One token at a time, from the format's lexer (promlex.l or openmetricslex.l). */
import { lexOM } from "./om-lexer.ts";
import { Scanner } from "./scanner.ts";
import { lexText } from "./text-lexer.ts";
import * as tokens from "./tokens.ts";

// Module-local copies of the shared constants, for speed (see tokens.ts).
const { T_EOF, T_WS, NEED_MORE } = tokens;

export class Lexer extends Scanner {
  lex(): number {
    if (this.i >= this.end) {
      if (this.final) return T_EOF;
      throw NEED_MORE;
    }
    this.start = this.i;
    this.nonAscii = false;
    return this.om ? lexOM(this, this.b[this.i]!) : lexText(this, this.b[this.i]!);
  }

  nextTok(): number {
    for (;;) {
      const t = this.lex();
      if (t !== T_WS) return t;
    }
  }
}
