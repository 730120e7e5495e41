import { toFile } from "openai/uploads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { newId, recordBatchEvent } from "@barge/core";
import { call, chatLine, jsonl, startTestApi, waitForBatch, type TestApi } from "../support/api-harness.js";
import { insertBatch, putInputFile } from "../support/seed.js";

// GET /v1/batches/{id}/logs: a batch's timeline in OpenAI's list shape, paged by entry id, or one
// line per entry with format=text. Most cases read entries written by hand (recordBatchEvent), so
// their contents are known exactly; the first reads what the validator wrote.

describe("GET /v1/batches/{id}/logs", () => {
  let t: TestApi;
  beforeAll(async () => {
    // No agents: batches stop at in_progress.
    t = await startTestApi({ CHUNK_SIZE: "4", API_POLL_MS: "50" });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** A running batch row of `tenant` (so the validator leaves it alone) with `entries` written to its timeline in order. */
  const batchWith = async (entries: [Parameters<typeof recordBatchEvent>[2], Record<string, unknown>][], tenant = "default") => {
    const { fileId } = await putInputFile(t.ctx, jsonl([chatLine("a")]), tenant);
    const id = newId("batch_");
    await insertBatch(t.ctx.db, { id, input_file_id: fileId, tenant, status: "in_progress", model: "m", in_progress_at: new Date() });
    for (const [kind, data] of entries) await recordBatchEvent(t.ctx.db, id, kind, data);
    return id;
  };
  const entryRows = (batchId: string) =>
    t.ctx.db.selectFrom("batch_events").select(["seq", "created_at"]).where("batch_id", "=", batchId).orderBy("seq").execute();

  const claims = (n: number) => Array.from({ length: n }, (_, i) => ["chunk_claimed", { chunk: i, agent: "agent-1", attempt: 1 }] as [ "chunk_claimed", Record<string, unknown>]);

  test("shows the validator's entry for a batch the SDK created", async () => {
    const file = await t.client.files.create({ file: await toFile(Buffer.from(jsonl(Array.from({ length: 8 }, (_, i) => chatLine(`l${i}`)))), "in.jsonl"), purpose: "batch" });
    const batch = await t.client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const running = await waitForBatch(t.client, batch.id, ["in_progress"]);
    const r = await call(t.url, `/v1/batches/${batch.id}/logs`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^application\/json/);
    // `created` is the create route's entry; this test is about what follows it.
    const data = (r.body.data as { kind: string }[]).filter((e) => e.kind !== "created");
    expect(data).toEqual([
      {
        object: "batch.event",
        id: expect.stringMatching(/^\d+$/),
        kind: "validated",
        created_at: running.in_progress_at,
        data: { lines: 8, chunks: 2, seconds: expect.any(Number) },
      },
    ]);
    expect(r.body).toMatchObject({ object: "list", last_id: (r.body.data as { id: string }[]).at(-1)!.id, has_more: false });
  });

  test("pages oldest first by entry id: limit, after, first_id, last_id, has_more", async () => {
    const id = await batchWith(claims(5));
    const seqs = (await entryRows(id)).map((r) => String(r.seq));
    const page = async (query: string) => {
      const r = await call(t.url, `/v1/batches/${id}/logs${query}`);
      expect(r.status).toBe(200);
      return r.body as { object: string; data: { id: string; data: { chunk: number } }[]; first_id: string | null; last_id: string | null; has_more: boolean };
    };
    const p1 = await page("?limit=2");
    expect([p1.object, p1.data.map((e) => e.id), p1.first_id, p1.last_id, p1.has_more]).toEqual(["list", seqs.slice(0, 2), seqs[0], seqs[1], true]);
    const p2 = await page(`?limit=2&after=${p1.last_id}`);
    expect([p2.data.map((e) => e.id), p2.has_more]).toEqual([seqs.slice(2, 4), true]);
    const p3 = await page(`?limit=2&after=${p2.last_id}`);
    expect([p3.data.map((e) => e.data.chunk), p3.first_id, p3.last_id, p3.has_more]).toEqual([[4], seqs[4], seqs[4], false]);
    // An exact fit has no more; past the end is an empty page; the default limit (100) holds all five.
    expect((await page(`?limit=5`)).has_more).toBe(false);
    expect(await page(`?after=${seqs[4]}`)).toEqual({ object: "list", data: [], first_id: null, last_id: null, has_more: false });
    expect((await page("")).data.map((e) => e.data.chunk)).toEqual([0, 1, 2, 3, 4]);
  });

  test("format=text: one line per entry, `<ISO time> <kind> k=v`, values JSON-encoded unless plain, same paging", async () => {
    const id = await batchWith([
      ["chunk_claimed", { chunk: 0, agent: "agent-1", attempt: 1 }],
      ["chunk_retried", { chunk: 0, agent: "two words", reason: "failed" }],
      ["validation_failed", { code: "invalid_json", errors: [{ line: 3 }], ok: false }],
    ]);
    const rows = await entryRows(id);
    const at = (i: number) => new Date(rows[i]!.created_at).toISOString();
    const first = await fetch(`${t.url}/v1/batches/${id}/logs?format=text&limit=2`);
    expect(first.status).toBe(200);
    expect(first.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect([first.headers.get("x-barge-has-more"), first.headers.get("x-barge-last-id")]).toEqual(["true", String(rows[1]!.seq)]);
    expect(await first.text()).toBe(
      `${at(0)} chunk_claimed agent=agent-1 chunk=0 attempt=1\n${at(1)} chunk_retried agent="two words" chunk=0 reason=failed\n`,
    );
    const rest = await fetch(`${t.url}/v1/batches/${id}/logs?format=text&after=${rows[1]!.seq}`);
    expect(rest.headers.get("x-barge-has-more")).toBe("false");
    expect(await rest.text()).toBe(`${at(2)} validation_failed ok=false code=invalid_json errors=[{"line":3}]\n`);
    // Keys come in the order Postgres keeps jsonb keys (shorter first), the same as the JSON format's.
    // An empty page is an empty body, with no last id.
    const none = await fetch(`${t.url}/v1/batches/${id}/logs?format=text&after=${rows[2]!.seq}`);
    expect([none.status, none.headers.get("x-barge-last-id"), await none.text()]).toEqual([200, null, ""]);
  });

  test("refuses a bad after, limit or format with a 400 naming it", async () => {
    const id = await batchWith(claims(1));
    const cases: [string, string, string][] = [
      ["after=abc", "after", "invalid_value"],
      ["after=-1", "after", "invalid_value"],
      ["after=1.5", "after", "invalid_value"],
      ["after=99999999999999999999", "after", "invalid_value"],
      ["limit=0", "limit", "invalid_value"],
      ["limit=1001", "limit", "invalid_value"],
      ["limit=ten", "limit", "invalid_type"],
      ["format=xml", "format", "invalid_value"],
    ];
    for (const [query, param, code] of cases) {
      const r = await call(t.url, `/v1/batches/${id}/logs?${query}`);
      expect([query, r.status, r.body.error.type, r.body.error.param, r.body.error.code]).toEqual([query, 400, "invalid_request_error", param, code]);
    }
    expect((await call(t.url, `/v1/batches/${id}/logs?after=abc`)).body.error.message).toBe(
      "Invalid value for 'after': must be the id of an entry (a whole number).",
    );
  });

  test("another tenant's batch, an unknown id and a malformed one all answer the same 404", async () => {
    const other = await batchWith(claims(2), "other-tenant");
    for (const id of [other, "batch_000000000000000000000000", "not-a-batch"]) {
      const r = await call(t.url, `/v1/batches/${id}/logs`);
      expect([r.status, r.body.error]).toEqual([
        404,
        { message: `No batch found with id '${id}'.`, type: "invalid_request_error", param: "batch_id", code: "not_found" },
      ]);
      expect((await fetch(`${t.url}/v1/batches/${id}/logs?format=text`)).status).toBe(404);
    }
  });
});
