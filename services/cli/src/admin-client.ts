import { z } from "zod";
import { BargeClient } from "./client.js";

const apiKeySchema = z.looseObject({
  id: z.string(),
  tenant: z.string(),
  name: z.string(),
  redacted: z.string(),
  created_at: z.number(),
  revoked_at: z.number().nullable(),
});
export type ApiKey = z.infer<typeof apiKeySchema>;
const createdKeySchema = apiKeySchema.extend({ key: z.string() });
const deletedSchema = z.looseObject({ id: z.string(), deleted: z.literal(true) });

const tenantSchema = z.looseObject({
  tenant: z.string(),
  weight: z.number(),
  limits: z.record(z.string(), z.number().nullable()),
  overrides: z.record(z.string(), z.number().nullable()),
  keys: z.number(),
});
export type Tenant = z.infer<typeof tenantSchema>;

/** What `PUT /v1/admin/tenants/{tenant}` takes: a number, null for unlimited, "default" to drop an override. */
export type LimitValue = number | null | "default";

/** The admin routes, called with BARGE_ADMIN_KEY. */
export class AdminClient extends BargeClient {
  createKey(tenant: string, name: string) {
    return this.call(createdKeySchema, "/v1/admin/keys", { method: "POST", body: JSON.stringify({ tenant, name }) });
  }

  /** Every key (revoked ones too), newest first, following the pages. */
  async listKeys(tenant?: string): Promise<ApiKey[]> {
    const page = z.object({ data: z.array(apiKeySchema), has_more: z.boolean(), last_id: z.string().nullable() });
    const out: ApiKey[] = [];
    for (let after: string | null = null; ; ) {
      const q: URLSearchParams = new URLSearchParams({ limit: "1000", ...(tenant ? { tenant } : {}), ...(after ? { after } : {}) });
      const p: z.infer<typeof page> = await this.call(page, `/v1/admin/keys?${q}`);
      out.push(...p.data);
      if (!p.has_more || !p.last_id) return out;
      after = p.last_id;
    }
  }

  revokeKey(id: string) {
    return this.call(deletedSchema, `/v1/admin/keys/${encodeURIComponent(id)}`, { method: "DELETE" });
  }

  getTenant(tenant: string): Promise<Tenant> {
    return this.call(tenantSchema, `/v1/admin/tenants/${encodeURIComponent(tenant)}`);
  }

  setTenant(tenant: string, patch: { weight?: number; limits?: Record<string, LimitValue> }): Promise<Tenant> {
    return this.call(tenantSchema, `/v1/admin/tenants/${encodeURIComponent(tenant)}`, { method: "PUT", body: JSON.stringify(patch) });
  }

  async listTenants(): Promise<Tenant[]> {
    return (await this.call(z.object({ data: z.array(tenantSchema) }), "/v1/admin/tenants")).data;
  }
}
