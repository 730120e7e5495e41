import { claimChunk, registerAgent } from "@barge/core";
import { describe, expect, it } from "vitest";
import type { TestContext } from "../support/context.js";
import { faultSuite } from "../support/fault-suite.js";
import { chatLine, seedBatch } from "../support/seed.js";
import { bearer, storeTenantKey } from "../support/tenant-keys.js";

// /health per caller: anonymous gets aggregates only (no workers, no batch ids); a tenant key gets
// the workers with only its own batch ids; the admin key gets every batch. Three tenants' batches
// (acme and globex by stored keys, `default` by BARGE_API_KEY) are leased by two workers.

const ADMIN_KEY = "admin-key-0123456789";
const SINGLE_KEY = "single-key-0123456789";

const get = async (url: string, key?: string) => {
  const r = await fetch(`${url}/health`, key ? { headers: bearer(key) } : {});
  const text = await r.text();
  return { status: r.status, text, body: JSON.parse(text) as Record<string, any> };
};

/** Seeds a 2-request batch of `tenant` and has `agent` lease its one chunk (the only one queued, so the claim order cannot matter). */
async function leased(ctx: TestContext, tenant: string, agent: string): Promise<string> {
  const { batchId } = await seedBatch(ctx, [chatLine(`${tenant}-0`, "a"), chatLine(`${tenant}-1`, "b")], { tenant });
  const chunk = await claimChunk(ctx.db, { agentId: agent, models: ["barge-sim-1"], leaseSeconds: 300 });
  expect([chunk?.batch_id, chunk?.idx]).toEqual([batchId, 0]);
  return batchId;
}

describe("GET /health by caller", () => {
  const suite = faultSuite();

  it("anonymous sees aggregates only; each tenant sees the workers with its own batch ids only; the admin sees all", async () => {
    const ctx = await suite.context({ BARGE_ADMIN_KEY: ADMIN_KEY, BARGE_API_KEY: SINGLE_KEY });
    const acmeKey = await storeTenantKey(ctx.db, "acme");
    const globexKey = await storeTenantKey(ctx.db, "globex");
    const revokedKey = await storeTenantKey(ctx.db, "acme", { revoked: true });
    for (const id of ["worker-1", "worker-2"]) await registerAgent(ctx.db, { id, hostname: `host-${id}`, models: ["barge-sim-1"], gpus: [] });
    const acme = await leased(ctx, "acme", "worker-1");
    const globex = await leased(ctx, "globex", "worker-1");
    const own = await leased(ctx, "default", "worker-2");
    const api = await suite.api(ctx);
    const all = [acme, globex, own];

    for (const key of [undefined, "wrong", revokedKey]) {
      const r = await get(api.url, key);
      expect([r.status, Object.keys(r.body).sort()]).toEqual([200, ["gpu", "limits", "queue", "reasons", "status"]]);
      expect([r.body.status, r.body.queue.active_jobs, r.body.queue.total_queued_requests]).toEqual(["healthy", 3, 6]);
      for (const id of all) expect(r.text).not.toContain(id);
    }

    const seen: Record<string, [string, string, string[]][]> = {};
    for (const [who, key] of [["acme", acmeKey], ["globex", globexKey], ["default", SINGLE_KEY], ["admin", ADMIN_KEY]] as const) {
      const r = await get(api.url, key);
      expect(r.status).toBe(200);
      seen[who] = r.body.workers.map((w: { id: string; status: string; current_batch_ids: string[] }) => [w.id, w.status, w.current_batch_ids]);
      const hidden = who === "admin" ? [] : all.filter((id) => !seen[who]!.some(([, , ids]) => ids.includes(id)));
      for (const id of hidden) expect(r.text, `${who} sees ${id}`).not.toContain(id);
    }
    // A worker is `processing` to everyone, even while it holds none of the caller's batches.
    expect(seen).toEqual({
      acme: [["worker-1", "processing", [acme]], ["worker-2", "processing", []]],
      globex: [["worker-1", "processing", [globex]], ["worker-2", "processing", []]],
      default: [["worker-1", "processing", []], ["worker-2", "processing", [own]]],
      admin: [["worker-1", "processing", [acme, globex].sort()], ["worker-2", "processing", [own]]],
    });
  });
});
