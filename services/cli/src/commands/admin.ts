import type { AdminClient, ApiKey, LimitValue, Tenant } from "../admin-client.js";
import { UsageError } from "../usage-error.js";

export interface AdminArgs {
  /** `create`, `list`, `revoke`, `show`, `set`. */
  action: string | undefined;
  /** The key id or tenant the action is about. */
  target: string | undefined;
  tenant?: string | undefined;
  name?: string | undefined;
  weight?: string | undefined;
  limits?: string[] | undefined;
}

const iso = (unix: number) => new Date(unix * 1000).toISOString();

function keyLine(k: ApiKey): string {
  const state = k.revoked_at === null ? "active" : `revoked ${iso(k.revoked_at)}`;
  return `${k.id}  ${k.tenant}  ${k.redacted}  ${iso(k.created_at)}  ${state}  ${k.name}`;
}

const tenantLine = (t: Tenant) => `${t.tenant}  weight ${t.weight}  ${t.keys} key${t.keys === 1 ? "" : "s"}`;

/** `--limit name=value`: a whole number, `unlimited` (null) or `default` (the environment's default again). */
export function parseLimit(arg: string): [string, LimitValue] {
  const i = arg.indexOf("=");
  if (i <= 0) throw new UsageError(`--limit wants name=value, got '${arg}'`);
  const [name, raw] = [arg.slice(0, i), arg.slice(i + 1)];
  if (raw === "unlimited") return [name, null];
  if (raw === "default") return [name, "default"];
  const n = Number(raw);
  if (raw === "" || !Number.isInteger(n)) throw new UsageError(`--limit ${name} wants a whole number, 'unlimited' or 'default', got '${raw}'`);
  return [name, n];
}

function need(what: string, value: string | undefined): string {
  if (!value) throw new UsageError(`needs ${what}`);
  return value;
}

/** `barge keys create|list|revoke`: a tenant's API keys, through the admin routes. */
export async function keys(client: AdminClient, a: AdminArgs, print: (line: string) => void): Promise<void> {
  switch (a.action) {
    case "create": {
      const k = await client.createKey(need("--tenant", a.tenant), need("--name", a.name));
      print(JSON.stringify(k, null, 2));
      console.error("The key is shown only this once: store it now.");
      return;
    }
    case "list":
      for (const k of await client.listKeys(a.tenant)) print(keyLine(k));
      return;
    case "revoke":
      await client.revokeKey(need("a key id", a.target));
      print(`revoked ${a.target}`);
      return;
    default:
      throw new UsageError(`keys wants create, list or revoke, got '${a.action ?? ""}'`);
  }
}

/** `barge tenants list|show|set`: a tenant's weight and limits, through the admin routes. */
export async function tenants(client: AdminClient, a: AdminArgs, print: (line: string) => void): Promise<void> {
  switch (a.action) {
    case "list":
      for (const t of await client.listTenants()) print(tenantLine(t));
      return;
    case "show":
      print(JSON.stringify(await client.getTenant(need("a tenant", a.target)), null, 2));
      return;
    case "set": {
      const tenant = need("a tenant", a.target);
      const limits = a.limits?.length ? Object.fromEntries(a.limits.map(parseLimit)) : undefined;
      if (a.weight === undefined && !limits) throw new UsageError("tenants set needs --weight or --limit");
      const weight = a.weight === undefined ? undefined : Number(a.weight);
      if (weight !== undefined && (a.weight === "" || Number.isNaN(weight))) throw new UsageError(`--weight wants a number, got '${a.weight}'`);
      print(JSON.stringify(await client.setTenant(tenant, { ...(weight !== undefined ? { weight } : {}), ...(limits ? { limits } : {}) }), null, 2));
      return;
    }
    default:
      throw new UsageError(`tenants wants list, show or set, got '${a.action ?? ""}'`);
  }
}
