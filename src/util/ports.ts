import { createServer } from "node:net";

/**
 * A TCP port that was free a moment ago on `host`: the kernel picks one for a listener on
 * port 0, which is then closed. Another process can take it before the caller binds it, so
 * callers that pass the number to a child process must retry when the child reports
 * "address already in use" (startPrometheus does).
 */
export function freePort(host = "127.0.0.1"): Promise<number> {
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

/** Whether a listener could bind `host:port` right now (nothing else listens there). */
export function portFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}
