import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { chromiumMissing, launchChromium, type Browser } from "../support/chromium.js";
import { createTestContext, type TestContext } from "../support/context.js";
import { chatLine, listKeys } from "../support/seed.js";
import { startServices, type Services } from "../support/services.js";
import { jsonl, submitFile, watch } from "./dashboard-page.js";

// The Submit page's fallback in Debian's Chromium: the suite's bucket has no CORS rules, so the
// browser may not PUT to it, and the page streams the file through the API instead.
const missing = chromiumMissing();
const SHOTS = join(process.cwd(), ".tmp");

/** One request the page made: its method, origin and path, and its status or why it failed. */
interface Sent {
  method: string;
  origin: string;
  path: string;
  outcome: number | string;
  contentType: string | undefined;
}

/** Every request the page sends from now on, answered or failed. */
function record(page: Page): Sent[] {
  const sent: Sent[] = [];
  page.on("response", (res) => {
    const r = res.request();
    const url = new URL(r.url());
    sent.push({ method: r.method(), origin: url.origin, path: url.pathname, outcome: res.status(), contentType: r.headers()["content-type"] });
  });
  page.on("requestfailed", (r) => {
    const url = new URL(r.url());
    sent.push({ method: r.method(), origin: url.origin, path: url.pathname, outcome: r.failure()?.errorText ?? "failed", contentType: r.headers()["content-type"] });
  });
  return sent;
}

describe.skipIf(missing !== undefined)(`the dashboard's upload through the API${missing ? ` (skipped: ${missing})` : ""}`, () => {
  let ctx: TestContext;
  let services: Services;
  let browser: Browser;

  beforeAll(async () => {
    // No PutBucketCors: the bucket refuses the page's preflight, as a bucket nobody configured does.
    ctx = await createTestContext();
    services = await startServices(ctx);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await services?.stop();
    await ctx?.close();
  });

  test("a bucket without CORS rules: the file goes through the API, the batch reaches 100% and the download is the output file", async ({ skip }) => {
    const apiOrigin = new URL(services.apiUrl).origin;
    const s3Origin = new URL(ctx.config.S3_ENDPOINT!).origin;
    // The premise, asked as Chromium asks it: some servers (MinIO) allow every origin by default.
    const preflight = await fetch(`${s3Origin}/${ctx.bucket}/staging/x.jsonl`, { method: "OPTIONS", headers: { origin: apiOrigin, "access-control-request-method": "PUT" } });
    const allowed = preflight.headers.get("access-control-allow-origin");
    skip(ctx.s3Kind === "external" && allowed !== null, `the external S3 server allows origin ${allowed} on a bucket without CORS rules`);
    expect(allowed).toBeNull();
    const page = await browser.context.newPage();
    const problems = watch(page, () => [apiOrigin, s3Origin]);
    const sent = record(page);
    await page.goto(services.apiUrl);

    const lines = Array.from({ length: 12 }, (_, i) => chatLine(`via-api-${i}`, `hello ${i}`, { max_tokens: 2 }));
    const body = jsonl(lines);
    await submitFile(page, "via-api.jsonl", body);
    await page.waitForURL(/#\/batches\/batch_/);
    const id = /batch_[\w-]+/.exec(page.url())![0];
    await expect.poll(() => page.getByTestId("batch-status").textContent(), { timeout: 60_000 }).toBe("completed");
    const bar = page.locator("progress").first();
    expect([await bar.getAttribute("value"), await bar.getAttribute("max")]).toEqual(["12", "12"]);
    await expect.poll(() => page.getByText("100%").count()).toBe(1);

    // The one PUT to S3 failed in the browser, and nothing reached the bucket's staging keys.
    expect(sent.filter((s) => s.origin === s3Origin).map((s) => [s.method, s.outcome])).toEqual([["PUT", "net::ERR_FAILED"]]);
    expect(await listKeys(ctx, "staging/")).toEqual([]);
    // The page asked for a presigned URL, never completed it, and posted the file as the one-shot form.
    const posts = sent.filter((s) => s.origin === apiOrigin && s.method === "POST");
    expect(posts.map((s) => [s.path, s.outcome])).toEqual([
      ["/v1/files/presign", 200],
      ["/v1/batches", 200],
    ]);
    expect(posts[1]!.contentType).toMatch(/^multipart\/form-data; boundary=/);

    const batch = (await (await fetch(`${services.apiUrl}/v1/batches/${id}`)).json()) as { input_file_id: string; output_file_id: string; request_counts: unknown };
    expect(batch.request_counts).toEqual({ total: 12, completed: 12, failed: 0 });
    const input = await fetch(`${services.apiUrl}/v1/files/${batch.input_file_id}`);
    expect(((await input.json()) as { filename: string; bytes: number })).toMatchObject({ filename: "via-api.jsonl", bytes: body.length });
    expect(await (await fetch(`${services.apiUrl}/v1/files/${batch.input_file_id}/content`)).text()).toBe(body.toString("utf8"));

    const output = await (await fetch(`${services.apiUrl}/v1/files/${batch.output_file_id}/content`)).text();
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Download results" }).click()]);
    const saved = join(SHOTS, `${id}-fallback-download.jsonl`);
    await download.saveAs(saved);
    expect(readFileSync(saved, "utf8")).toBe(output);
    expect(output.trim().split("\n").map((l) => JSON.parse(l).custom_id)).toEqual(lines.map((l) => l.custom_id));

    // Chromium's own words for the refused preflight are the only errors; the page logged none.
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    expect(problems).toEqual([
      expect.stringMatching(new RegExp(`^console: Access to fetch at '${esc(s3Origin)}/${ctx.bucket}/staging/default/file-\\w+\\.jsonl\\?[^']+' from origin '${esc(apiOrigin)}' has been blocked by CORS policy: Response to preflight request`)),
      "console: Failed to load resource: net::ERR_FAILED",
    ]);
    await page.close();
  });
});
