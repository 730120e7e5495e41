import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import type { SimFaults } from "./config.js";
import { badRequest, methodNotAllowed, routeNotFound } from "./errors.js";
import { isSimPath } from "./generate.js";
import { readBody, send, sendError, sendJson } from "./http.js";
import type { InferenceHandler } from "./inference.js";
import type { RequestLogEntry } from "./request-log.js";
import type { EngineSimStats } from "./stats.js";

// The routing table: vLLM's inference, model list, health and metrics routes, the /sim/*
// controls for tests and benches, and vLLM's 404/405 bodies for everything else.

/** What the routes answer from. */
export interface RouteDeps {
  inference: InferenceHandler;
  /** The serialized GET /v1/models body; it never changes while the sim runs. */
  modelsBody: string;
  metrics(): string;
  stats(): EngineSimStats;
  setFaults(partial: Partial<SimFaults>): SimFaults;
  requests(): readonly RequestLogEntry[];
}

const GET_PATHS: ReadonlySet<string> = new Set(["/v1/models", "/health", "/metrics", "/sim/stats", "/sim/requests"]);

/** The node:http request listener for the sim. */
export function createRouter(deps: RouteDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const startedAt = Date.now();
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const path = query === -1 ? url : url.slice(0, query);
    const header = req.headers["x-request-id"];
    const requestId = typeof header === "string" ? header : null;

    if (req.method === "POST") {
      if (isSimPath(path)) return readBody(req, res, requestId, (raw) => deps.inference.handle(path, raw, requestId, res, startedAt));
      if (path === "/sim/faults") return readBody(req, res, requestId, (raw) => postFaults(deps, raw, res, requestId));
    } else if (req.method === "GET") {
      switch (path) {
        case "/v1/models":
          return sendJson(res, 200, deps.modelsBody, requestId);
        case "/health":
          return send(res, 200, "", "text/plain; charset=utf-8", requestId);
        case "/metrics":
          return send(res, 200, deps.metrics(), "text/plain; version=0.0.4; charset=utf-8", requestId);
        case "/sim/stats":
          return sendJson(res, 200, JSON.stringify(deps.stats()), requestId);
        case "/sim/requests":
          return sendJson(res, 200, JSON.stringify(deps.requests()), requestId);
      }
    }
    const known = isSimPath(path) || path === "/sim/faults" || GET_PATHS.has(path);
    // The body is drained so a keep-alive connection stays usable after the error.
    req.resume();
    sendError(res, known ? methodNotAllowed(req.method ?? "", path) : routeNotFound(path), requestId);
  };
}

function postFaults(deps: RouteDeps, raw: string, res: ServerResponse, requestId: string | null): void {
  try {
    sendJson(res, 200, JSON.stringify(deps.setFaults(JSON.parse(raw) as Partial<SimFaults>)), requestId);
  } catch (error) {
    const message = error instanceof z.ZodError ? z.prettifyError(error) : "Invalid JSON body";
    sendError(res, badRequest(message), requestId);
  }
}
