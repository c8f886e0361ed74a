import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** Ports this process handed out lately: the kernel may offer one again before its user binds it. */
const handedOut: number[] = [];
const REMEMBERED = 1024;

/**
 * A TCP port that was free a moment ago on `host`: the kernel picks one for a listener on
 * port 0, which is then closed. Another process can take it before the caller binds it, so
 * callers that pass the number to a child process must retry when the child reports
 * "address already in use" (startPrometheus does). Within this process a port is not handed
 * out twice (among the last thousand), nor one of `except` (a port about to be bound).
 */
export async function freePort(host = "127.0.0.1", except: readonly number[] = []): Promise<number> {
  for (;;) {
    const port = await kernelPort(host);
    if (handedOut.includes(port) || except.includes(port)) continue;
    handedOut.push(port);
    if (handedOut.length > REMEMBERED) handedOut.shift();
    return port;
  }
}

function kernelPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close((err) => (err ? reject(err) : port > 0 ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}

/**
 * Whether a socket listens on TCP `port` in this network namespace (/proc/net/tcp and tcp6,
 * state 0A). Not "can it be bound": a process just killed leaves its connections' sockets
 * (FIN-WAIT) on the port for a moment, which refuse a bind but do not mean someone else has it.
 */
export function portListened(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state === "0A" && local?.endsWith(hex)) return true;
    }
  }
  return false;
}
