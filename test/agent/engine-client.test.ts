import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "node:net";
import { createEngineSim, expectedBody, type EngineSim } from "@barge/engine-sim";
import { createEngineClient, EngineRequestError, type EngineClient } from "@barge/agent/testing";

const chat = (content: string) => ({ model: "barge-sim-1", messages: [{ role: "user", content }] });

describe("engine client against engine-sim", () => {
  let sim: EngineSim;
  let client: EngineClient;

  beforeAll(async () => {
    sim = await createEngineSim({ models: ["barge-sim-1"], seed: 7 });
    client = createEngineClient({ baseUrl: sim.url, connections: 4, timeoutMs: 5_000, maxAttempts: 3, backoffBaseMs: 5 });
  });
  afterAll(async () => {
    await client.close();
    await sim.close();
  });

  const logFor = (requestId: string) => sim.requests().filter((r) => r.requestId === requestId);

  it("posts the body, sends x-request-id, and returns the parsed answer", async () => {
    const res = await client.send({ url: "/v1/chat/completions", body: chat("hello"), requestId: "b1:0" });
    expect(res.status).toBe(200);
    expect(res.requestId).toBe("b1:0");
    expect(res.attempts).toBe(1);
    const { created: _created, ...rest } = res.body as Record<string, unknown>;
    expect(rest).toEqual(expectedBody("/v1/chat/completions", chat("hello")));
    expect(logFor("b1:0").map((r) => r.status)).toEqual([200]);
  });

  it("returns a 4xx at once, without retrying", async () => {
    const res = await client.send({ url: "/v1/chat/completions", body: chat("__sim_fail_400__"), requestId: "b1:1" });
    expect(res.status).toBe(400);
    expect(res.attempts).toBe(1);
    expect((res.body as { error: { code: number } }).error.code).toBe(400);
    expect(logFor("b1:1").map((r) => r.status)).toEqual([400]);
  });

  it("retries 5xx up to the attempt limit and then returns the last answer", async () => {
    sim.setFaults({ errorRate: 1 });
    try {
      const res = await client.send({ url: "/v1/chat/completions", body: chat("x"), requestId: "b1:2" });
      expect(res.status).toBe(500);
      expect(res.attempts).toBe(3);
      expect(logFor("b1:2").map((r) => r.status)).toEqual([500, 500, 500]);
    } finally {
      sim.setFaults({ errorRate: 0 });
    }
  });

  it("times out a request the engine never answers, retrying it, then throws request_timeout", async () => {
    sim.setFaults({ timeoutRate: 1, hangMs: 60_000 });
    const quick = createEngineClient({ baseUrl: sim.url, connections: 2, timeoutMs: 150, maxAttempts: 2, backoffBaseMs: 5 });
    try {
      const err = await quick.send({ url: "/v1/chat/completions", body: chat("y"), requestId: "b1:3" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EngineRequestError);
      expect((err as EngineRequestError).code).toBe("request_timeout");
      expect((err as EngineRequestError).attempts).toBe(2);
      expect(logFor("b1:3")).toHaveLength(2);
    } finally {
      sim.setFaults({ timeoutRate: 0 });
      await quick.close();
    }
  });

  it("throws engine_unavailable when nothing listens", async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer();
      srv.listen(0, "127.0.0.1", () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const dead = createEngineClient({ baseUrl: `http://127.0.0.1:${port}`, connections: 1, timeoutMs: 1_000, maxAttempts: 2, backoffBaseMs: 5 });
    try {
      const err = await dead.send({ url: "/v1/chat/completions", body: chat("z"), requestId: "b1:4" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EngineRequestError);
      expect((err as EngineRequestError).code).toBe("engine_unavailable");
      expect((err as EngineRequestError).attempts).toBe(2);
    } finally {
      await dead.close();
    }
  });

  it("rejects with the caller's abort reason, not an engine error, and does not retry", async () => {
    sim.setFaults({ timeoutRate: 1, hangMs: 60_000 });
    try {
      const ctl = new AbortController();
      const pending = client.send({ url: "/v1/chat/completions", body: chat("w"), requestId: "b1:5" }, ctl.signal).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 50));
      ctl.abort(new Error("stop now"));
      const err = await pending;
      expect(err).not.toBeInstanceOf(EngineRequestError);
      expect((err as Error).message).toBe("stop now");
      expect(logFor("b1:5")).toHaveLength(1);
    } finally {
      sim.setFaults({ timeoutRate: 0 });
    }
  });

  it("lists the served models", async () => {
    expect(await client.models()).toEqual(["barge-sim-1"]);
  });
});
