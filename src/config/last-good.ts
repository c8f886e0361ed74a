import { readFileSync } from "node:fs";
import { PromshardError, PromshardErrors } from "../errors.ts";
import { sha256 } from "../util/hash.ts";

/** One problem of a config that failed, with where it is when known. */
export interface ConfigIssue {
  readonly path: string | null;
  readonly message: string;
}

/** Why the config file is not the one running. */
export interface ConfigFailure {
  /** Every problem, joined: `path: message; …`. */
  readonly message: string;
  readonly issues: readonly ConfigIssue[];
  /** sha256 of the failing file; null when it could not be read. */
  readonly hash: string | null;
  /** When this failure (the same message) was first seen. */
  readonly since: string;
}

/** The config that runs. */
export interface GoodConfig<T> {
  readonly value: T;
  readonly text: string;
  readonly hash: string;
  readonly loadedAt: string;
}

/** What one check of the file found. */
export type ConfigCheck<T> =
  | { readonly kind: "unchanged" }
  /** `recovered`: the file had failed before this load. */
  | { readonly kind: "loaded"; readonly good: GoodConfig<T>; readonly first: boolean; readonly recovered: boolean }
  /** `fresh`: a failure not reported before (a new message). */
  | { readonly kind: "failed"; readonly failure: ConfigFailure; readonly fresh: boolean };

/**
 * A config file read again on every check and parsed when its content changed: a parse that
 * fails is reported while the last good config keeps running. Shared by the coordinator
 * (a round, SIGHUP, /-/reload) and the sidecar (file events, a periodic hash check).
 * `key` adds to the content what else decides the result (the sidecar's Prometheus
 * version): the same text is parsed again when it changes.
 */
export class LastGoodConfig<T> {
  readonly file: string;
  readonly #parse: (text: string) => T;
  readonly #key: () => string;
  #seen: string | undefined;
  #good: GoodConfig<T> | undefined;
  #failure: ConfigFailure | undefined;

  constructor(file: string, parse: (text: string) => T, key: () => string = () => "") {
    this.file = file;
    this.#parse = parse;
    this.#key = key;
  }

  get good(): GoodConfig<T> | undefined {
    return this.#good;
  }

  get failure(): ConfigFailure | undefined {
    return this.#failure;
  }

  /** Reads the file; parses it when it changed or `force`; keeps the last good on failure. */
  check(force = false): ConfigCheck<T> {
    let text: string;
    try {
      text = readFileSync(this.file, "utf8");
    } catch (err) {
      // Forget what was seen: the same content coming back must be parsed again.
      this.#seen = undefined;
      const unreadable = new PromshardError(
        "config_unreadable",
        `cannot read the config file: ${(err as Error).message}`,
        { path: this.file, cause: err },
      );
      return this.#fail(null, unreadable);
    }
    const hash = sha256(text);
    const seen = `${hash}:${this.#key()}`;
    if (!force && seen === this.#seen) return { kind: "unchanged" };
    this.#seen = seen;
    let value: T;
    try {
      value = this.#parse(text);
    } catch (err) {
      if (!(err instanceof PromshardError)) throw err;
      return this.#fail(hash, err);
    }
    return this.use(value, text);
  }

  /** Runs `value` (parsed from `text`) as the good config: a load, or a fallback kept elsewhere. */
  use(value: T, text: string): ConfigCheck<T> {
    const first = this.#good === undefined;
    const recovered = this.#failure !== undefined;
    this.#good = { value, text, hash: sha256(text), loadedAt: new Date().toISOString() };
    this.#failure = undefined;
    return { kind: "loaded", good: this.#good, first, recovered };
  }

  #fail(hash: string | null, err: PromshardError): ConfigCheck<T> {
    const issues = (err instanceof PromshardErrors ? err.errors : [err]).map((e) => ({
      path: e.path ?? null,
      message: e.message,
    }));
    const message = issues.map((i) => i.message).join("; ");
    const fresh = this.#failure?.message !== message || this.#failure.hash !== hash;
    const since = fresh ? new Date().toISOString() : this.#failure!.since;
    this.#failure = { message, issues, hash, since };
    return { kind: "failed", failure: this.#failure, fresh };
  }
}
