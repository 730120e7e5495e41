import { describe, expect, it } from "vitest";
import { batchRow, readResults } from "../support/results.js";
import { chatLine, seedUnvalidatedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";

describe("agent: lines past the limits", () => {
  const suite = suiteResources();

  it("fails only the request of a line nested 5,000 deep or longer than MAX_LINE_BYTES, and runs the rest", async () => {
    const ctx = await suite.context({ MAX_LINE_BYTES: "16384", SEGMENT_MAX_LINES: "2", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
    const sim = await suite.sim({ models: ["barge-sim-1"] });
    // Built as text: JSON.stringify itself overflows the stack on it.
    const deep = JSON.stringify(chatLine("deep", "hi")).replace('"messages":', `"extra":${"[".repeat(5000)}${"]".repeat(5000)},"messages":`);
    const [a, b, long, c] = [chatLine("a", "one"), chatLine("b", "two"), chatLine("long", "x".repeat(20_000)), chatLine("c", "three")].map((l) => JSON.stringify(l));
    // Its custom_id comes after the body, still within the start the agent keeps.
    const late = `{"body":${JSON.stringify(chatLine("late", "y".repeat(30_000)).body)},"url":"/v1/chat/completions","method":"POST","custom_id":"late"}`;
    const lines = [a!, deep, b!, long!, late, c!];
    const longBytes = Buffer.byteLength(long!) + 1;
    const lateBytes = Buffer.byteLength(late) + 1;
    const batchId = await seedUnvalidatedBatch(ctx, lines);

    await suite.agent(ctx, { engineUrl: sim.url, agentId: "long-lines" }).start();
    const batch = await waitFor("the batch to complete", async () => {
      const b = await batchRow(ctx, batchId);
      return b.status === "completed" ? b : undefined;
    });

    const { output, errors } = await readResults(ctx, batch);
    expect(output.map((l) => l.custom_id)).toEqual(["a", "b", "c"]);
    expect(errors.map((l) => [l.custom_id, l.response, l.error])).toEqual([
      ["deep", null, { code: "too_deeply_nested", message: "Line 2 nests JSON more than 128 levels deep; it was not sent." }],
      ["long", null, { code: "line_too_large", message: `Line 4 is ${longBytes} bytes, longer than the line limit; it was not sent.` }],
      ["late", null, { code: "line_too_large", message: `Line 5 is ${lateBytes} bytes, longer than the line limit; it was not sent.` }],
    ]);
    const rows = await ctx.db.selectFrom("request_errors").selectAll().where("batch_id", "=", batchId).orderBy("request_index").execute();
    expect(rows.map((r) => [r.request_index, r.custom_id, r.code, r.attempts, r.status_code, r.line])).toEqual([
      [1, "deep", "too_deeply_nested", 0, null, 2],
      [3, "long", "line_too_large", 0, null, 4],
      [4, "late", "line_too_large", 0, null, 5],
    ]);
    // Neither rejected line reached the engine.
    expect(sim.requests()).toHaveLength(3);
  });
});
