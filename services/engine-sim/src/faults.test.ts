import { describe, expect, it } from "vitest";
import { mulberry32 } from "./prng.js";
import { chat, getJson, post, useSims } from "./test-helpers.js";

const start = useSims();

describe("engine-sim fault injection over HTTP", () => {
  it("answers 500 to every request with errorRate 1", async () => {
    const sim = await start({ errorRate: 1 });
    for (let i = 0; i < 5; i++) {
      const reply = await post(sim, "/v1/chat/completions", chat(`request ${i}`));
      expect(reply.status).toBe(500);
      expect(reply.json.error).toMatchObject({ type: "InternalServerError", code: 500 });
    }
    expect(sim.stats().counters).toMatchObject({ injectedErrors: 5, completed: 0 });
  });

  it("draws faults reproducibly from the seed", async () => {
    const statuses = async (): Promise<number[]> => {
      const sim = await start({ errorRate: 0.5, seed: 42 });
      const out: number[] = [];
      for (let i = 0; i < 20; i++) out.push((await post(sim, "/v1/chat/completions", chat(`same ${i % 3}`))).status);
      return out;
    };
    const draw = mulberry32(42);
    const predicted = Array.from({ length: 20 }, () => (draw() < 0.5 ? 500 : 200));
    expect(predicted).toContain(500);
    expect(predicted).toContain(200);
    expect(await statuses()).toEqual(predicted);
    expect(await statuses()).toEqual(predicted);
  });

  it("changes faults live with setFaults and POST /sim/faults", async () => {
    const sim = await start();
    expect((await post(sim, "/v1/chat/completions", chat("a"))).status).toBe(200);
    expect(sim.setFaults({ errorRate: 1 })).toMatchObject({ errorRate: 1, timeoutRate: 0 });
    expect((await post(sim, "/v1/chat/completions", chat("a"))).status).toBe(500);
    const update = await post(sim, "/sim/faults", { errorRate: 0, failMarker: "BOOM" });
    expect(update.status).toBe(200);
    expect(update.json).toEqual({ errorRate: 0, timeoutRate: 0, hangMs: 120000, failMarker: "BOOM", seed: 1 });
    expect((await post(sim, "/v1/chat/completions", chat("a"))).status).toBe(200);
    expect((await post(sim, "/v1/chat/completions", chat("a BOOM"))).status).toBe(400);
    expect((await post(sim, "/v1/chat/completions", chat("__sim_fail_400__"))).status).toBe(200);
    expect((await post(sim, "/sim/faults", { errorRate: 2 })).status).toBe(400);
    expect((await post(sim, "/sim/faults", { bogus: 1 })).status).toBe(400);
    expect(() => sim.setFaults({ timeoutRate: -1 })).toThrow();
    expect((await getJson(sim, "/sim/stats")).faults.failMarker).toBe("BOOM");
  });

  it("never answers a hung request, then destroys its socket after hangMs", async () => {
    const sim = await start({ timeoutRate: 1, hangMs: 50 });
    await expect(post(sim, "/v1/chat/completions", chat("hang"))).rejects.toThrow();
    expect(sim.stats().counters).toMatchObject({ hung: 1, completed: 0 });
    const [entry] = sim.requests();
    expect(entry).toMatchObject({ status: null, path: "/v1/chat/completions" });
    expect(entry?.finishedAt).not.toBeNull();
  });
});
