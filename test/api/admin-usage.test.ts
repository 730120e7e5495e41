import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { call, startBareApi, type TestApi } from "../support/api-harness.js";

// GET /v1/admin/usage over rows of tenant_usage laid down by hand on chosen days (the commits
// that write them are covered in agent/usage and e2e/tenant-usage): buckets, filters, grouping,
// the accepted time forms and every refusal.

const ADMIN = "admin-key-0123456789";
const TENANT = "tenant-key";
const day = (iso: string) => Date.parse(`${iso}T00:00:00Z`) / 1000;

/** `[day, tenant, model, batch, requests, failed, prompt, completion, cached, reasoning]` */
const ROWS: [string, string, string, string, number, number, number, number, number, number][] = [
  ["2026-11-28", "team-a", "m1", "batch_1", 10, 1, 100, 50, 5, 2],
  ["2026-11-28", "team-a", "m2", "batch_2", 4, 0, 40, 20, 0, 0],
  ["2026-11-28", "team-b", "m1", "batch_3", 3, 3, 0, 0, 0, 0],
  ["2026-11-30", "team-a", "m1", "batch_1", 6, 0, 60, 30, 1, 1],
  ["2026-12-01", "team-b", "m2", "batch_4", 7, 2, 70, 35, 7, 3],
  ["2025-11-01", "team-a", "m1", "batch_0", 1, 0, 1, 1, 0, 0],
];

const result = (tenant: string, model: string | null, [requests, failed, input, output, cached, reasoning]: number[]) => ({
  object: "organization.usage.completions.result",
  input_tokens: input,
  output_tokens: output,
  input_cached_tokens: cached,
  input_audio_tokens: 0,
  output_audio_tokens: 0,
  num_model_requests: requests! - failed!,
  project_id: tenant,
  user_id: null,
  api_key_id: null,
  model,
  batch: true,
  service_tier: null,
  output_reasoning_tokens: reasoning,
  failed_requests: failed,
});

describe("GET /v1/admin/usage", () => {
  let t: TestApi;
  const usage = (query: string, key = ADMIN) => call(t.url, `/v1/admin/usage${query}`, { headers: { authorization: `Bearer ${key}` } });
  /** The buckets as `[start day, results]`. */
  const buckets = (body: { data: { start_time: number; end_time: number; results: unknown[] }[] }) =>
    body.data.map((b) => {
      expect(b.end_time - b.start_time).toBe(86_400);
      return [new Date(b.start_time * 1000).toISOString().slice(0, 10), b.results];
    });

  beforeAll(async () => {
    t = await startBareApi({ BARGE_ADMIN_KEY: ADMIN, BARGE_API_KEY: TENANT });
    await t.ctx.db
      .insertInto("tenant_usage")
      .values(
        ROWS.map(([d, tenant, model, batch_id, requests, failed, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens]) => ({
          day: d,
          tenant,
          model,
          batch_id,
          requests,
          failed,
          prompt_tokens,
          completion_tokens,
          cached_tokens,
          reasoning_tokens,
        })),
      )
      .execute();
  });
  afterAll(() => t?.close());

  test("one bucket per UTC day of the range, empty days too, one result per tenant summed over models and batches", async () => {
    const r = await usage("?from=2026-11-28&to=2026-12-02");
    expect(r.status).toBe(200);
    expect([r.body.object, r.body.has_more, r.body.next_page]).toEqual(["page", false, null]);
    expect(r.body.data.every((b: { object: string }) => b.object === "bucket")).toBe(true);
    expect(buckets(r.body)).toEqual([
      ["2026-11-28", [result("team-a", null, [14, 1, 140, 70, 5, 2]), result("team-b", null, [3, 3, 0, 0, 0, 0])]],
      ["2026-11-29", []],
      ["2026-11-30", [result("team-a", null, [6, 0, 60, 30, 1, 1])]],
      ["2026-12-01", [result("team-b", null, [7, 2, 70, 35, 7, 3])]],
    ]);
    expect(r.body.data[0].start_time).toBe(day("2026-11-28"));
  });

  test("group_by=model splits by model; tenant filters; OpenAI's start_time/end_time in unix seconds take whole days", async () => {
    const byModel = await usage(`?start_time=${day("2026-11-28") + 3600}&end_time=${day("2026-11-29") + 60}&group_by=model,project_id&bucket_width=1d`);
    expect(byModel.status).toBe(200);
    // An end inside a day takes that whole day in; a start inside one starts at its midnight.
    expect(buckets(byModel.body)).toEqual([
      ["2026-11-28", [result("team-a", "m1", [10, 1, 100, 50, 5, 2]), result("team-a", "m2", [4, 0, 40, 20, 0, 0]), result("team-b", "m1", [3, 3, 0, 0, 0, 0])]],
      ["2026-11-29", []],
    ]);
    const mine = await usage("?tenant=team-b&from=2026-11-28T00:00:00Z&to=2026-12-02");
    expect(buckets(mine.body)).toEqual([
      ["2026-11-28", [result("team-b", null, [3, 3, 0, 0, 0, 0])]],
      ["2026-11-29", []],
      ["2026-11-30", []],
      ["2026-12-01", [result("team-b", null, [7, 2, 70, 35, 7, 3])]],
    ]);
    const nobody = await usage("?tenant=team-z&from=2026-11-28&to=2026-11-29");
    expect(buckets(nobody.body)).toEqual([["2026-11-28", []]]);
    // A year's range, its edge included, reaches the oldest row.
    const year = await usage("?from=2025-11-01&to=2026-11-02");
    expect([year.status, year.body.data.length, year.body.data[0].results]).toEqual([200, 366, [result("team-a", null, [1, 0, 1, 1, 0, 0])]]);
  });

  test("without a range: the last 7 UTC days, today included", async () => {
    const r = await usage("");
    const today = new Date().toISOString().slice(0, 10);
    expect(r.status).toBe(200);
    expect(r.body.data).toHaveLength(7);
    expect(buckets(r.body).at(-1)![0]).toBe(today);
  });

  test("bad parameters are a 400 naming the parameter", async () => {
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const cases: [string, string, string][] = [
      ["?from=yesterday", "from", "Invalid value for 'from': must be unix seconds, an ISO 8601 date (2026-12-01) or date-time (2026-12-01T00:00:00Z)."],
      ["?to=2026-02-30", "to", "Invalid value for 'to': must be unix seconds, an ISO 8601 date (2026-12-01) or date-time (2026-12-01T00:00:00Z)."],
      ["?start_time=-5", "start_time", "Invalid value for 'start_time': must be unix seconds, an ISO 8601 date (2026-12-01) or date-time (2026-12-01T00:00:00Z)."],
      ["?end_time=%00", "end_time", "Invalid value for 'end_time': must be unix seconds, an ISO 8601 date (2026-12-01) or date-time (2026-12-01T00:00:00Z)."],
      ["?from=2025-01-01&to=2026-01-03", "to", "Invalid value for 'to': the range spans 367 days; at most 366 per request."],
      ["?from=2026-12-02&to=2026-12-01", "to", "Invalid value for 'to': the range holds no day (from 2026-12-02 up to 2026-12-01, exclusive)."],
      [`?start_time=${day("2026-12-02")}&end_time=${day("2026-12-02")}`, "end_time", "Invalid value for 'end_time': the range holds no day (from 2026-12-02 up to 2026-12-02, exclusive)."],
      // Only a start, in the future: the range would end tomorrow, before it starts.
      ["?start_time=99999999999", "start_time", `Invalid value for 'start_time': the range holds no day (from 5138-11-16 up to ${tomorrow}, exclusive).`],
      ["?from=2026-12-01&start_time=1", "start_time", "Invalid value for 'start_time': give 'from' or 'start_time', not both."],
      ["?group_by=user_id", "group_by", "Invalid value for 'group_by': must be 'model' or 'project_id', comma-separated."],
      ["?bucket_width=1h", "bucket_width", "Invalid value for 'bucket_width': usage is kept per UTC day: the only bucket_width is '1d'."],
      ["?tenant=a/b", "tenant", "Invalid value for 'tenant': a tenant is 1 to 64 letters, digits, '-' or '_', starting with a letter or digit."],
    ];
    for (const [query, param, message] of cases) {
      const r = await usage(query);
      expect([query, r.status, r.body.error]).toEqual([query, 400, { message, type: "invalid_request_error", param, code: "invalid_value" }]);
    }
  });

  test("is the admin's alone: a tenant key gets 403, no key 401", async () => {
    const tenant = await usage("", TENANT);
    expect([tenant.status, tenant.body.error.code, tenant.body.error.type]).toEqual([403, "admin_key_required", "permission_error"]);
    const none = await call(t.url, "/v1/admin/usage");
    expect([none.status, none.body.error.code]).toEqual([401, "invalid_api_key"]);
    // And the admin key is no tenant key: it reads usage, not a tenant's batches.
    const batches = await call(t.url, "/v1/batches", { headers: { authorization: `Bearer ${ADMIN}` } });
    expect([batches.status, batches.body.error.code]).toEqual([403, "tenant_key_required"]);
  });
});
