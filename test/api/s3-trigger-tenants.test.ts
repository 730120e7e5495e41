import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { call, jsonl } from "../support/api-harness.js";
import { createTestContext, type TestContext } from "../support/context.js";
import { put, read, statusOf } from "../support/inbox.js";
import { eventually } from "../support/processes.js";
import { chatLine } from "../support/seed.js";
import { startServices, type Services } from "../support/services.js";
import { bearer, storeTenantKey } from "../support/tenant-keys.js";

// The trigger's inbox per tenant, on the poller, S3, the API, an agent and engine-sim:
// `inbox/<tenant>/<path>.jsonl` is `<tenant>`'s batch when that tenant is known (a `tenants` row or
// an API key, revoked ones too), else BARGE_TENANT's. Results stay at `results/<same path>/`.
// Every look-alike of a known tenant (case, prefix) stays BARGE_TENANT's; a file named like a known
// tenant (`inbox/acme.jsonl`, whose results would be `results/acme/`) starts nothing.

const SINGLE_KEY = "single-key-0123456789";
let ctx: TestContext;
let services: Services;
const keys: Record<string, string> = {};
const lines = (prefix: string) => [0, 1].map((i) => chatLine(`${prefix}-${i}`, `hello ${i}`));

/** Each inbox key, the results prefix it writes under, and whose batch it must be. */
const landed = [
  { key: "inbox/acme/a.jsonl", results: "results/acme/a/", owner: "acme" },
  { key: "inbox/globex/deep/b.jsonl", results: "results/globex/deep/b/", owner: "globex" },
  { key: "inbox/initech/c.jsonl", results: "results/initech/c/", owner: "initech" },
  { key: "inbox/nobody/d.jsonl", results: "results/nobody/d/", owner: "default" },
  { key: "inbox/ACME/e.jsonl", results: "results/ACME/e/", owner: "default" },
  { key: "inbox/acme-corp/f.jsonl", results: "results/acme-corp/f/", owner: "default" },
  { key: "inbox/solo.jsonl", results: "results/solo/", owner: "default" },
  { key: "inbox/default/g.jsonl", results: "results/default/g/", owner: "default" },
  { key: "inbox/team a/h.jsonl", results: "results/team a/h/", owner: "default" },
];
const ran: Record<string, { id: string; output_file_id: string }> = {};

beforeAll(async () => {
  ctx = await createTestContext({ BARGE_API_KEY: SINGLE_KEY, TRIGGER_POLL_SECONDS: "0.2", API_POLL_MS: "50", AGENT_POLL_MS: "50" });
  // acme is known by its key; globex by its tenants row alone; initech only by a revoked key.
  keys.acme = await storeTenantKey(ctx.db, "acme");
  await ctx.db.insertInto("tenants").values({ tenant: "globex" }).execute();
  await storeTenantKey(ctx.db, "initech", { revoked: true });
  services = await startServices(ctx);
  for (const l of landed) await put(ctx, l.key, jsonl(lines(l.key)));
  await put(ctx, "inbox/acme.jsonl", jsonl(lines("named-like-acme")));
  for (const l of landed) ran[l.key] = await statusOf(ctx, l.results, ["completed", "failed"]);
  // globex gets a key only now: what its batch was owned by was settled on acceptance.
  keys.globex = await storeTenantKey(ctx.db, "globex");
}, 120_000);

afterAll(async () => {
  await services?.stop();
  await ctx?.close();
});

const as = (key: string, path: string) => call(services.apiUrl, path, { headers: bearer(key) });

describe("the trigger's inbox per tenant", () => {
  test("each object's batch belongs to the tenant its first folder names when known, else to BARGE_TENANT", async () => {
    const rows = await ctx.db.selectFrom("batches").innerJoin("files", "files.id", "batches.input_file_id").select(["batches.id", "batches.tenant", "batches.status", "files.tenant as file_tenant"]).execute();
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(landed.map((l) => [l.key, byId.get(ran[l.key]!.id)?.tenant, byId.get(ran[l.key]!.id)?.file_tenant, ran[l.key]!.id && byId.get(ran[l.key]!.id)?.status])).toEqual(
      landed.map((l) => [l.key, l.owner, l.owner, "completed"]),
    );
    expect(rows).toHaveLength(landed.length);
  });

  test("a file named like a known tenant starts nothing: its row is settled failed, saying why, and nothing is written under results/acme/", async () => {
    const settled = await eventually("inbox/acme.jsonl settled", () => ctx.db.selectFrom("s3_objects").select(["outcome", "batch_id", "error"]).where("key", "=", "inbox/acme.jsonl").where("outcome", "is not", null).executeTakeFirst());
    expect(settled).toEqual({
      outcome: "failed",
      batch_id: null,
      error: "'inbox/acme.jsonl' is named like tenant 'acme', so its results would land in that tenant's results folder; put it in a folder instead.",
    });
    expect(await read(ctx, "results/acme/status.json")).toBeUndefined();
  });

  test("results stay at results/<same path>/ whoever owns the batch", async () => {
    for (const l of landed) {
      const manifest = JSON.parse((await read(ctx, `${l.results}manifest.json`))!);
      expect([l.key, manifest.batch_id, manifest.output.key, manifest.output.lines]).toEqual([l.key, ran[l.key]!.id, `${l.results}output.jsonl`, 2]);
    }
  });

  test("each tenant's key lists and reads only its own inbox batches; every other id is a 404", async () => {
    const expected: Record<string, string[]> = {
      [keys.acme!]: landed.filter((l) => l.owner === "acme").map((l) => ran[l.key]!.id),
      [keys.globex!]: landed.filter((l) => l.owner === "globex").map((l) => ran[l.key]!.id),
      [SINGLE_KEY]: landed.filter((l) => l.owner === "default").map((l) => ran[l.key]!.id),
    };
    expect(Object.values(expected).map((ids) => ids.length)).toEqual([1, 1, 6]);
    for (const [key, own] of Object.entries(expected)) {
      const list = await as(key, "/v1/batches?limit=100");
      expect([list.status, list.body.data.map((b: { id: string }) => b.id).sort()]).toEqual([200, [...own].sort()]);
      for (const l of landed) {
        const mine = own.includes(ran[l.key]!.id);
        const batch = await as(key, `/v1/batches/${ran[l.key]!.id}`);
        const content = await fetch(`${services.apiUrl}/v1/files/${ran[l.key]!.output_file_id}/content`, { headers: bearer(key) });
        const text = await content.text();
        expect([l.key, batch.status, content.status]).toEqual([l.key, mine ? 200 : 404, mine ? 200 : 404]);
        if (mine) expect(text.trim().split("\n").map((line) => JSON.parse(line).custom_id)).toEqual([`${l.key}-0`, `${l.key}-1`]);
        else expect(text).not.toContain(l.key);
      }
    }
  });

  test("a tenant made after its folder was used does not take over the batches already made there; its next object is its own", async () => {
    const nobody = await storeTenantKey(ctx.db, "nobody");
    const before = await as(nobody, "/v1/batches");
    expect([before.status, before.body.data]).toEqual([200, []]);
    expect((await as(nobody, `/v1/batches/${ran["inbox/nobody/d.jsonl"]!.id}`)).status).toBe(404);

    await put(ctx, "inbox/nobody/later.jsonl", jsonl(lines("later")));
    const later = await statusOf(ctx, "results/nobody/later/", ["completed"]);
    const after = await as(nobody, "/v1/batches");
    expect(after.body.data.map((b: { id: string }) => b.id)).toEqual([later.id]);
    expect((await as(SINGLE_KEY, `/v1/batches/${later.id}`)).status).toBe(404);
  });
});
