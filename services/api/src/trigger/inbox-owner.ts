import { tenantName, type ApiConfig, type Db } from "@barge/core";
import { isKnownTenant } from "../store/known-tenants.js";

type InboxSettings = Pick<ApiConfig, "TRIGGER_PREFIX" | "BARGE_TENANT">;

/**
 * The tenant name an inbox key's first path segment could be, or undefined when that segment
 * cannot be a tenant's name. `folder` says whether the segment is a folder
 * (`<TRIGGER_PREFIX><name>/<path>.jsonl`) or the file itself (`<TRIGGER_PREFIX><name>.jsonl`).
 * Exact match only: S3 keys and tenant names are both case-sensitive, so `Acme/` never names `acme`.
 */
export function inboxFirstSegment(key: string, cfg: Pick<ApiConfig, "TRIGGER_PREFIX">): { name: string; folder: boolean } | undefined {
  const rest = key.slice(cfg.TRIGGER_PREFIX.length);
  const slash = rest.indexOf("/");
  const name = slash < 0 ? rest.slice(0, -".jsonl".length) : rest.slice(0, slash);
  return tenantName.safeParse(name).success ? { name, folder: slash >= 0 } : undefined;
}

/** Whose batch an inbox object starts, or why it starts none. */
export type InboxOwner = { tenant: string } | { refused: string };

/**
 * Who an inbox object's batch belongs to: the tenant its first folder names when that tenant is
 * known (a `tenants` row or an API key), else BARGE_TENANT, which single-key mode always was. An
 * unknown folder never falls to a tenant by likeness (case, prefix): it stays BARGE_TENANT's.
 * One case is refused: `<TRIGGER_PREFIX><tenant>.jsonl` for a known tenant other than
 * BARGE_TENANT, whose results would land in that tenant's own results folder.
 */
export async function inboxOwner(db: Db, key: string, cfg: InboxSettings): Promise<InboxOwner> {
  const first = inboxFirstSegment(key, cfg);
  if (first === undefined || first.name === cfg.BARGE_TENANT || !(await isKnownTenant(db, first.name))) return { tenant: cfg.BARGE_TENANT };
  if (first.folder) return { tenant: first.name };
  return { refused: `'${key}' is named like tenant '${first.name}', so its results would land in that tenant's results folder; put it in a folder instead.` };
}
