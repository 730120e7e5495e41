import { Hono } from "hono";
import { z } from "zod";
import { DASHBOARD_ASSETS } from "@barge/dashboard";
import { principalOf } from "../auth.js";
import type { ApiDeps, AppEnv } from "../deps.js";

export const sessionObject = z.object({
  object: z.literal("dashboard.session"),
  /** Whether a key is needed: some key is configured. */
  auth: z.enum(["open", "required"]),
  /** Who the Authorization header names; `anonymous` for none or a wrong or revoked key. */
  principal: z.enum(["anonymous", "tenant", "admin"]),
  tenant: z.string().nullable(),
});

/**
 * The CSP: the page's own code and styles only; it may call the API and S3 (a presigned PUT goes
 * straight to the bucket, whose host depends on the deployment) and nothing else loads from elsewhere.
 */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' http: https:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const TYPES: Record<keyof typeof DASHBOARD_ASSETS, string> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};

/**
 * The web dashboard: its page at `/` and its two assets, built into the API (no second server,
 * nothing from another host), served without a key since they hold no data; and
 * `GET /ui/session`, which tells the page whether to ask for a key and whose key it holds.
 * It answers a wrong key with `anonymous` rather than 401, so signing in is one quiet call.
 */
export function uiRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  const asset = (name: keyof typeof DASHBOARD_ASSETS) => (c: { body: (b: string, s: 200, h: Record<string, string>) => Response }) =>
    c.body(DASHBOARD_ASSETS[name], 200, {
      "content-type": TYPES[name],
      // Revalidated each load: the assets change with each release of the API.
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
      ...(name === "index.html" ? { "content-security-policy": CSP, "referrer-policy": "no-referrer" } : {}),
    });
  app.get("/", asset("index.html"));
  app.get("/ui/app.js", asset("app.js"));
  app.get("/ui/app.css", asset("app.css"));
  app.get("/ui/session", async (c) => {
    const open = (await principalOf(deps, undefined)) !== undefined;
    const principal = open ? undefined : await principalOf(deps, c.req.header("authorization"));
    const body: z.infer<typeof sessionObject> = {
      object: "dashboard.session",
      auth: open ? "open" : "required",
      principal: open ? "tenant" : (principal?.kind ?? "anonymous"),
      tenant: open ? deps.config.BARGE_TENANT : principal?.kind === "tenant" ? principal.tenant : null,
    };
    return c.json(body, 200, { "cache-control": "no-store" });
  });
  return app;
}
