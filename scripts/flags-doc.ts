// Writes docs/flags.md from the commands' own --help text (make docs).
import { writeFileSync } from "node:fs";
import { flagsDoc, loadTree } from "../src/cli/command.ts";
import { root } from "../src/cli/root.ts";

writeFileSync(new URL("../docs/flags.md", import.meta.url), flagsDoc(await loadTree(root)));
