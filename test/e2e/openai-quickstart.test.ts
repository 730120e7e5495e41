import { createReadStream, readFileSync } from "node:fs";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectedBody } from "@barge/engine-sim";
import { createTestContext, type TestContext } from "../support/context.js";
import { startServices, type Services } from "../support/services.js";

const INPUT = "examples/chat.jsonl";
const inputLines = readFileSync(INPUT, "utf8").trim().split("\n").map((l) => JSON.parse(l));

let ctx: TestContext;
let svc: Services;
let client: OpenAI;

beforeAll(async () => {
  // Small chunks and segments so even 24 requests cross chunk and segment boundaries.
  ctx = await createTestContext({ CHUNK_SIZE: "7", SEGMENT_MAX_LINES: "3", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
  svc = await startServices(ctx, { sim: { maxNumSeqs: 4 } });
  client = new OpenAI({ baseURL: `${svc.apiUrl}/v1`, apiKey: "unused", maxRetries: 0 });
});
afterAll(async () => {
  await svc?.stop();
  await ctx?.close();
});

async function waitFinal(id: string) {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
    const b = await client.batches.retrieve(id);
    if (["completed", "failed", "expired", "cancelled"].includes(b.status)) return b;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`batch ${id} did not finish`);
}

/** Checks a stitched output against the input: each custom_id once, in order, with the sim's body. */
function checkOutput(text: string) {
  const out = text.trim().split("\n").map((l) => JSON.parse(l));
  expect(out.map((l) => l.custom_id)).toEqual(inputLines.map((l) => l.custom_id));
  out.forEach((line, i) => {
    expect(line.id).toMatch(/^batch_req_/);
    expect(line.error).toBeNull();
    expect(line.response.status_code).toBe(200);
    const { created, ...body } = line.response.body;
    const { created: _c, ...want } = expectedBody("/v1/chat/completions", inputLines[i].body) as Record<string, unknown>;
    expect(typeof created).toBe("number");
    expect(body).toEqual(want);
  });
  return out;
}

describe("the openai SDK quick start against Barge: upload, batch, download", () => {
  it("files.create, batches.create, retrieve until completed, files.content", async () => {
    const file = await client.files.create({ file: createReadStream(INPUT), purpose: "batch" });
    expect(file).toMatchObject({ object: "file", purpose: "batch", filename: "chat.jsonl", bytes: readFileSync(INPUT).length });

    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: { suite: "e2e" },
    });
    expect(created).toMatchObject({ object: "batch", status: "validating", input_file_id: file.id, metadata: { suite: "e2e" } });

    const done = await waitFinal(created.id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toEqual({ total: 24, completed: 24, failed: 0 });
    expect(done.model).toBe("barge-sim-1");
    expect(done.error_file_id).toBeNull();
    for (const k of ["in_progress_at", "finalizing_at", "completed_at"] as const) expect(typeof done[k]).toBe("number");

    const content = await client.files.content(done.output_file_id!);
    const out = checkOutput(await content.text());
    const usage = out.reduce((s, l) => s + l.response.body.usage.total_tokens, 0);
    expect((done as unknown as { usage: { total_tokens: number } }).usage.total_tokens).toBe(usage);

    const outFile = await client.files.retrieve(done.output_file_id!);
    expect(outFile.purpose).toBe("batch_output");
    const extra = done as unknown as { output_location: { key: string }; results_url: string };
    expect(extra.output_location.key).toBe(`outputs/default/${done.id}/output.jsonl`);
    // The presigned GET serves the same bytes to a client with no credentials.
    const viaUrl = await (await fetch(extra.results_url)).text();
    checkOutput(viaUrl);
  });

  it("uploads through a presigned PUT with plain fetch", async () => {
    const bytes = readFileSync(INPUT);
    const presign = (await (
      await fetch(`${svc.apiUrl}/v1/files/presign`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ filename: "chat.jsonl", purpose: "batch", bytes: bytes.length }),
      })
    ).json()) as { id: string; upload_url: string };
    const put = await fetch(presign.upload_url, { method: "PUT", body: bytes });
    expect(put.status).toBe(200);
    const complete = await fetch(`${svc.apiUrl}/v1/files/${presign.id}/complete`, { method: "POST" });
    expect(complete.status).toBe(200);
    expect(await complete.json()).toMatchObject({ id: presign.id, status: "processed", bytes: bytes.length });

    const batch = await client.batches.create({ input_file_id: presign.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const done = await waitFinal(batch.id);
    expect(done.status).toBe("completed");
    checkOutput(await (await client.files.content(done.output_file_id!)).text());
  });
});
