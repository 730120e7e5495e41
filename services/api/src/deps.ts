import type { HttpBindings } from "@hono/node-server";
import type { ApiConfig, Bucket, Db, Logger, ObjectTrigger } from "@barge/core";

/** What the API needs from its process: the database, the bucket, settings and a logger. */
export interface ApiDeps extends Bucket {
  db: Db;
  /** The API's view of the settings: what its handlers and loops read. */
  config: ApiConfig;
  log: Logger;
  /** The serverless trigger landed objects go to; absent when serverless mode is off. */
  trigger?: ObjectTrigger;
  /** How `POST /v1/s3-events` fetches SNS certificates and SubscribeURLs; HTTPS when absent (tests serve their own). */
  snsFetch?: (url: string) => Promise<string>;
}

/**
 * Hono's environment. Under @hono/node-server `incoming` is the raw Node request, which the
 * multipart routes read directly; it is absent when the app is called through `app.request()`.
 * `principal` and `tenant` are set once a request is authenticated (see auth.ts); routes read the
 * tenant with `tenantOf(c)`, and the access log prints it.
 */
export type AppEnv = { Bindings: Partial<HttpBindings>; Variables: { tenant?: string; principal?: Principal } };

/** Who an authenticated request is: a tenant (through BARGE_API_KEY, a tenant key, or an open API) or the admin. */
export type Principal = { kind: "tenant"; tenant: string; keyId: string | null } | { kind: "admin" };
