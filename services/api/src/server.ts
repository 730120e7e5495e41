import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createApp } from "./app.js";
import { startBackground } from "./background.js";
import type { ApiDeps } from "./deps.js";

/**
 * No limit on a whole request: a large upload over a slow link may take hours, and a request body
 * that stalls is cut by UPLOAD_IDLE_TIMEOUT_SECONDS instead. The header timeout stays, set
 * explicitly: Node derives its default from requestTimeout, so 0 there would turn it off too.
 * Node checks it every connectionsCheckingInterval, so that is kept below the timeout itself.
 */
function serverTimeouts(headersTimeoutSeconds: number) {
  const headersTimeout = Math.ceil(headersTimeoutSeconds * 1000);
  return { requestTimeout: 0, headersTimeout, connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.ceil(headersTimeout / 4))) };
}

/** A running API server. */
export interface ApiServer {
  url: string;
  port: number;
  /** Stops accepting requests and the background loops. */
  close(): Promise<void>;
}

/** Serves the API over HTTP (port 0 picks a free one) and starts its background loops. */
export async function startApi(deps: ApiDeps & { host: string; port: number }): Promise<ApiServer> {
  const background = startBackground(deps);
  const trigger = deps.trigger ?? background.trigger;
  const app = createApp({ ...deps, wake: background.wake, ...(trigger ? { trigger } : {}) });
  let server: Server;
  try {
    server = await new Promise<Server>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, hostname: deps.host, port: deps.port, serverOptions: serverTimeouts(deps.config.API_HEADERS_TIMEOUT_SECONDS) }, () => resolve(s as Server)) as Server;
      s.once("error", reject);
    });
  } catch (err) {
    await background.stop();
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  const host = deps.host.includes(":") ? `[${deps.host}]` : deps.host;
  return {
    url: `http://${host}:${port}`,
    port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await Promise.all([closed, background.stop()]);
    },
  };
}
