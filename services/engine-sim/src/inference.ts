import type { ServerResponse } from "node:http";
import { ApiError, badRequest, failMarkerHit, injectedError, modelNotFound } from "./errors.js";
import type { FaultInjector } from "./faults.js";
import { type Generation, type SimLimits, type SimPath, generate } from "./generate.js";
import type { GpuModel } from "./gpu.js";
import { sendError, sendJson } from "./http.js";
import { isRecord } from "./json.js";
import type { RequestLog, RequestLogEntry } from "./request-log.js";

// One inference request from body to answer: checked in vLLM's order (JSON, model, then the
// fields), then fault injection, then the GPU model decides when the body is sent.

/** Outcome counters of the inference endpoints. */
export interface InferenceCounters {
  /** Inference requests received (all outcomes). */
  received: number;
  /** 4xx answers (invalid, unknown model, too long, fail marker). */
  clientErrors: number;
  /** 500s picked by errorRate. */
  injectedErrors: number;
  /** Requests picked by timeoutRate and never answered. */
  hung: number;
}

/** What answering an inference request needs. */
export interface InferenceDeps {
  models: ReadonlySet<string>;
  limits: SimLimits;
  gpu: GpuModel;
  faults: FaultInjector;
  log: RequestLog;
}

/** Answers the inference endpoints and counts their outcomes. */
export class InferenceHandler {
  private readonly count: InferenceCounters = { received: 0, clientErrors: 0, injectedErrors: 0, hung: 0 };
  private readonly hangTimers = new Set<NodeJS.Timeout>();

  constructor(private readonly deps: InferenceDeps) {}

  /** Answers one request whose body has been read. */
  handle(path: SimPath, raw: string, requestId: string | null, res: ServerResponse, startedAt: number): void {
    const { models, limits, faults, log } = this.deps;
    this.count.received++;
    const entry = log.start(path, requestId, startedAt);
    const fail = (error: ApiError): void => {
      sendError(res, error, requestId);
      this.finish(entry, error.status);
    };

    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return fail(badRequest("Invalid JSON body"));
    }
    const model = isRecord(body) ? body.model : undefined;
    if (typeof model === "string") {
      if (entry !== null) entry.model = model;
      // vLLM checks the model before anything else about the request.
      if (!models.has(model)) return fail(modelNotFound(model));
    }
    if (faults.markerHit(raw, body)) return fail(failMarkerHit(faults.failMarker));
    let generation: Generation;
    try {
      generation = generate(path, body, limits);
    } catch (error) {
      if (error instanceof ApiError) return fail(error);
      throw error;
    }

    switch (faults.draw()) {
      case "error":
        this.count.injectedErrors++;
        return fail(injectedError());
      case "hang":
        this.count.hung++;
        return this.hang(res, entry);
      case "serve":
        return this.serve(res, generation, entry, requestId);
    }
  }

  /** A copy of the outcome counters. */
  counters(): InferenceCounters {
    return { ...this.count };
  }

  /** Drops every hung request's timer, so nothing keeps the process alive after close. */
  clearHangs(): void {
    for (const timer of this.hangTimers) clearTimeout(timer);
    this.hangTimers.clear();
  }

  private serve(res: ServerResponse, generation: Generation, entry: RequestLogEntry | null, requestId: string | null): void {
    const payload = generation.body;
    const ticket = this.deps.gpu.submit(generation.promptTokens, generation.completionTokens, () => {
      sendJson(res, 200, JSON.stringify(payload), requestId);
      this.finish(entry, 200);
    });
    if (ticket !== undefined) {
      res.once("close", () => {
        if (res.writableEnded) return;
        ticket.cancel();
        this.finish(entry, null);
      });
    }
  }

  private hang(res: ServerResponse, entry: RequestLogEntry | null): void {
    let hanging = true;
    const release = (): void => {
      if (!hanging) return;
      hanging = false;
      clearTimeout(timer);
      this.hangTimers.delete(timer);
      this.finish(entry, null);
    };
    // Logged before the socket goes, so the entry is final by the time the client sees the error.
    const timer = setTimeout(() => {
      release();
      res.destroy();
    }, this.deps.faults.hangMs);
    this.hangTimers.add(timer);
    res.once("close", release);
  }

  private finish(entry: RequestLogEntry | null, status: number | null): void {
    if (status !== null && status >= 400 && status < 500) this.count.clientErrors++;
    if (entry !== null) this.deps.log.finish(entry, status);
  }
}
