import { afterEach, expect } from "vitest";
import type { EngineSimOptions } from "./config.js";
import { type EngineSim, createEngineSim } from "./server.js";

// Shared by the sim's HTTP test suites (server.test.ts, faults.test.ts); not exported by the package.

/** A parsed JSON body, loosely typed for assertions. */
export type Json = Record<string, any>;

/** The model every suite's sim serves by default. */
export const MODEL = "barge-sim-1";

/** Registers an afterEach that closes the test's sims, and returns the function that starts one. */
export function useSims(): (options?: EngineSimOptions) => Promise<EngineSim> {
  const sims: EngineSim[] = [];
  afterEach(async () => {
    await Promise.all(sims.splice(0).map((sim) => sim.close()));
  });
  return async (options = {}) => {
    const sim = await createEngineSim(options);
    sims.push(sim);
    return sim;
  };
}

/** A reply's status, headers and parsed JSON body. */
export interface Reply {
  status: number;
  headers: Headers;
  json: Json;
}

/** POSTs a JSON body (a string is sent as is) and parses the JSON reply. */
export async function post(sim: EngineSim, path: string, body: unknown, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(sim.url + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...(init.headers as Record<string, string>) },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: init.signal ?? null,
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Json };
}

/** GETs a path, expecting 200, and returns its JSON body. */
export async function getJson(sim: EngineSim, path: string): Promise<any> {
  const res = await fetch(sim.url + path);
  expect(res.status).toBe(200);
  return res.json();
}

/** A one-message chat request to MODEL. */
export const chat = (content: string, extra: Json = {}): Json => ({ model: MODEL, messages: [{ role: "user", content }], ...extra });
