import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { StartupError } from "@barge/core";
import { createApp } from "./app.js";
import { startBackground } from "./background.js";
import type { ApiDeps } from "./deps.js";
import { bindRefusal } from "./bind-policy.js";

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

type Fetch = (request: Request, env: object) => Response | Promise<Response>;

/** The API's listening socket, whose handler is swapped once the API is ready to serve. */
export interface ApiListener {
  url: string;
  port: number;
  /** From now on, requests go to `fetch`. */
  serve(fetch: Fetch): void;
  close(): Promise<void>;
}

/**
 * Listens on host and port (0 picks a free one), answering with `fetch` for now. Refuses, before
 * binding anything, a non-loopback host while no key is set (see bind-policy.ts).
 */
export async function listenApi(opts: { host: string; port: number; config: ApiDeps["config"]; fetch: Fetch }): Promise<ApiListener> {
  const refusal = bindRefusal(opts.host, opts.config);
  if (refusal) throw new StartupError(refusal);
  let current = opts.fetch;
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve(
      { fetch: (req, env) => current(req, env), hostname: opts.host, port: opts.port, serverOptions: serverTimeouts(opts.config.API_HEADERS_TIMEOUT_SECONDS) },
      () => resolve(s as Server),
    ) as Server;
    s.once("error", reject);
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}`,
    port,
    serve(fetch) {
      current = fetch;
    },
    close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      return closed;
    },
  };
}

/**
 * Serves the API over HTTP (port 0 picks a free one) and starts its background loops. `listener`,
 * when given, is a socket already open (the process answered "starting" on it while it waited).
 */
export async function startApi(deps: ApiDeps & { host: string; port: number; listener?: ApiListener }): Promise<ApiServer> {
  const background = startBackground(deps);
  const trigger = deps.trigger ?? background.trigger;
  const app = createApp({ ...deps, wake: background.wake, ...(trigger ? { trigger } : {}) });
  let listener: ApiListener;
  try {
    listener = deps.listener ?? (await listenApi({ host: deps.host, port: deps.port, config: deps.config, fetch: app.fetch }));
  } catch (err) {
    await background.stop();
    throw err;
  }
  listener.serve(app.fetch);
  return {
    url: listener.url,
    port: listener.port,
    async close() {
      await Promise.all([listener.close(), background.stop()]);
    },
  };
}
