import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** A listening metrics endpoint. */
export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` with `render()`'s text, and the agent's probes: `/livez` (the process is
 * up) and `/readyz` (200 once `unready()` has no reason, else 503 with it, such as an engine still
 * loading its model). Every other path is a 404. Port 0 picks a free one.
 */
export async function startMetricsServer(opts: {
  host: string;
  port: number;
  contentType: string;
  render: () => Promise<string>;
  unready: () => string | undefined;
}): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (req.method === "GET" && path === "/livez") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ status: "ok" }));
      return;
    }
    if (req.method === "GET" && path === "/readyz") {
      const reason = opts.unready();
      const body = reason === undefined ? { status: "ready" } : { status: "unready", reason };
      res.writeHead(reason === undefined ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify(body));
      return;
    }
    if (req.method !== "GET" || path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    opts.render().then(
      (text) => res.writeHead(200, { "content-type": opts.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
