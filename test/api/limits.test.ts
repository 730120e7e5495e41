import { RateLimitError, type APIError } from "openai";
import { toFile } from "openai/uploads";
import { describe, expect, test } from "vitest";
import { call, chatLine, jsonl, startBareApi, startTestApi, waitForBatch, type TestApi } from "../support/api-harness.js";
import { listKeys } from "../support/seed.js";

async function inputFile(t: TestApi, requests: number, prefix = "r") {
  const text = jsonl(Array.from({ length: requests }, (_, i) => chatLine(`${prefix}${i}`)));
  return t.client.files.create({ file: await toFile(Buffer.from(text), "in.jsonl"), purpose: "batch" });
}

function create(t: TestApi, fileId: string) {
  return t.client.batches.create({ input_file_id: fileId, endpoint: "/v1/chat/completions", completion_window: "24h" });
}

async function rateLimited(p: Promise<unknown>): Promise<RateLimitError> {
  const err = await p.then(
    () => null,
    (e: APIError) => e,
  );
  expect(err).toBeInstanceOf(RateLimitError);
  return err as RateLimitError;
}

describe("global limits on batch creation", () => {
  test("MAX_ACTIVE_BATCHES: one more is a 429 with Retry-After, one-shot forms too; a finished batch frees its slot", async () => {
    const t = await startBareApi({ MAX_ACTIVE_BATCHES: "2" });
    try {
      const f = await inputFile(t, 1);
      const first = await create(t, f.id);
      await create(t, f.id);
      const err = await rateLimited(create(t, f.id));
      expect(err.status).toBe(429);
      expect(err.headers.get("retry-after")).toBe("60");
      expect(err.error).toMatchObject({ type: "rate_limit_error", code: "batch_limit_exceeded", param: null });

      const form = new FormData();
      form.set("file", new Blob([jsonl([chatLine("o")])]), "oneshot.jsonl");
      const oneShot = await call(t.url, "/v1/batches", { method: "POST", body: form });
      expect(oneShot.status).toBe(429);
      expect(oneShot.headers.get("retry-after")).toBe("60");
      expect(oneShot.body.error.code).toBe("batch_limit_exceeded");
      expect((await t.client.files.list()).data.map((x) => x.id)).toEqual([f.id]);
      expect(await listKeys(t.ctx, "inputs/")).toHaveLength(1);

      // Cancelled while validating is final at once, so the slot is free again.
      await t.client.batches.cancel(first.id);
      expect((await create(t, f.id)).status).toBe("validating");
      await rateLimited(create(t, f.id));
    } finally {
      await t.close();
    }
  });

  test("creates racing for the last slots cannot all slip under the limit", async () => {
    const t = await startBareApi({ MAX_ACTIVE_BATCHES: "3" });
    try {
      const f = await inputFile(t, 1);
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => create(t, f.id)));
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
      const rejected = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
      expect(rejected).toHaveLength(5);
      for (const e of rejected) expect(e).toBeInstanceOf(RateLimitError);
      expect(await t.ctx.db.selectFrom("batches").select("id").execute()).toHaveLength(3);
    } finally {
      await t.close();
    }
  });

  test("MAX_QUEUED_REQUESTS: a create while that many requests wait to run is a 429; running them frees room", async () => {
    const t = await startTestApi({ MAX_QUEUED_REQUESTS: "5", CHUNK_SIZE: "2", AGENT_POLL_MS: "50", API_POLL_MS: "50" });
    try {
      const four = await create(t, (await inputFile(t, 4, "a")).id);
      await waitForBatch(t.client, four.id, ["in_progress"]);
      // 4 queued: under the limit, so this one is admitted; its own size is only known once it is validated.
      const three = await create(t, (await inputFile(t, 3, "b")).id);
      await waitForBatch(t.client, three.id, ["in_progress"]);

      const f = await inputFile(t, 1, "c");
      const err = await rateLimited(create(t, f.id));
      expect(err.error).toMatchObject({ type: "rate_limit_error", code: "queued_requests_limit_exceeded" });
      expect(err.message).toContain("7 requests are queued");

      // What agents do as they work: the first batch's chunks all run, leaving 3 queued.
      await t.ctx.db
        .updateTable("chunks")
        .set((eb) => ({ status: "done", committed: eb.ref("request_count"), completed: eb.ref("request_count") }))
        .where("batch_id", "=", four.id)
        .execute();
      expect((await create(t, f.id)).status).toBe("validating");
    } finally {
      await t.close();
    }
  });
});
