/**
 * The webhook's serving certificate and key from files, reloaded when they change, without a
 * restart. A Secret volume changes by an atomic swap of its `..data` symlink, a local
 * `promshard certs` by renames: a watch on each file's directory catches both quickly, and a
 * poll catches what a watch misses (some volume types send no events). A new pair is used
 * only once it parses and the key matches the certificate; until then the old one stays.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { PromshardError } from "../errors.ts";

export interface TlsPair {
  cert: string;
  key: string;
  /** Of the first (leaf) certificate. */
  notAfter: Date;
  fingerprint: string;
}

/** Parses and checks a PEM certificate (chain) and key; throws certificate_invalid naming the problem. */
export function checkPair(cert: string, key: string, where = "certificate"): TlsPair {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new PromshardError("certificate_invalid", `not a PEM certificate: ${(err as Error).message}`, {
      path: where,
      cause: err,
    });
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new PromshardError("certificate_invalid", `not a PEM private key: ${(err as Error).message}`, {
      path: where,
      cause: err,
    });
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new PromshardError(
      "certificate_invalid",
      "the key does not belong to the certificate (a half-written pair?)",
      {
        path: where,
      },
    );
  }
  return { cert, key, notAfter: new Date(x509.validTo), fingerprint: x509.fingerprint256 };
}

export async function loadPair(certFile: string, keyFile: string): Promise<TlsPair> {
  const read = async (file: string) => {
    try {
      return await readFile(file, "utf8");
    } catch (err) {
      throw new PromshardError(
        "certificate_invalid",
        `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; make it with promshard certs, or mount the Secret`,
        { path: file === certFile ? "--tls.cert-file" : "--tls.key-file", cause: err },
      );
    }
  };
  const [cert, key] = [await read(certFile), await read(keyFile)];
  return checkPair(cert, key, `${certFile} + ${keyFile}`);
}

export interface WatchOptions {
  certFile: string;
  keyFile: string;
  /** Called with each new valid pair (not with the one already loaded). */
  onChange: (pair: TlsPair) => void;
  /** Called when the files changed but do not make a valid pair (yet). */
  onError: (err: Error) => void;
  /** Default 10 s. */
  pollMs?: number;
  /** Wait this long after an event before reading, so both files are in place. Default 100 ms. */
  debounceMs?: number;
}

export interface PairWatcher {
  /** Re-reads now; resolves to the pair in use afterwards. */
  check(): Promise<TlsPair | undefined>;
  close(): void;
}

export function watchPair(initial: TlsPair, opts: WatchOptions): PairWatcher {
  let current = initial;
  let closed = false;
  let running: Promise<TlsPair | undefined> | undefined;
  let again = false;
  let lastError = "";
  const check = async (): Promise<TlsPair | undefined> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          const pair = await loadPair(opts.certFile, opts.keyFile);
          lastError = "";
          if (pair.fingerprint !== current.fingerprint || pair.key !== current.key) {
            current = pair;
            if (!closed) opts.onChange(pair);
          }
        } catch (err) {
          const e = err as Error;
          // One report per distinct problem, not one per poll.
          if (e.message !== lastError && !closed) opts.onError(e);
          lastError = e.message;
        }
      } while (again && !closed);
      running = undefined;
      return current;
    })();
    return running;
  };

  let timer: NodeJS.Timeout | undefined;
  const soon = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void check(), opts.debounceMs ?? 100);
    timer.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const dir of new Set([dirname(opts.certFile), dirname(opts.keyFile)])) {
    try {
      const w = watch(dir, { persistent: false }, soon);
      w.on("error", () => w.close());
      watchers.push(w);
    } catch {
      // No watch on this file system: the poll still sees changes.
    }
  }
  const poll = setInterval(() => void check(), opts.pollMs ?? 10_000);
  poll.unref();
  return {
    check,
    close() {
      closed = true;
      clearTimeout(timer);
      clearInterval(poll);
      for (const w of watchers) w.close();
    },
  };
}
