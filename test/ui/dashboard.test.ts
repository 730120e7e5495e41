import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { PutBucketCorsCommand } from "@aws-sdk/client-s3";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { chromiumMissing, launchChromium, type Browser } from "../support/chromium.js";
import { createTestContext, type TestContext } from "../support/context.js";
import { chatLine } from "../support/seed.js";
import { startServices, type Services } from "../support/services.js";
import { storeTenantKey } from "../support/tenant-keys.js";
import { jsonl, submitFile, watch } from "./dashboard-page.js";

// The dashboard in Debian's Chromium against the real API, agent, engine-sim, Postgres and S3.
const missing = chromiumMissing();
const SHOTS = join(process.cwd(), ".tmp");
const DOCS = join(process.cwd(), "docs");
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** axe-core's serious and critical findings on the page as it is now. */
async function axeViolations(page: Page): Promise<string[]> {
  // Through the DevTools protocol, which the page's CSP (script-src 'self') does not govern.
  await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const r = await (globalThis as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe.run();
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.map((n) => n.target.join(" ")) }));
  });
  return found.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id} (${v.impact}): ${v.targets.join(", ")}`);
}

async function shot(page: Page, name: string, docs = false) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `dashboard-${name}.png`), fullPage: true });
  if (docs) {
    mkdirSync(DOCS, { recursive: true });
    await page.screenshot({ path: join(DOCS, `dashboard-${name}.png`), fullPage: true });
  }
}

/** Lets the page's S3 origin PUT presigned uploads (the embedded stack and compose set this up themselves). */
async function allowBrowserUploads(ctx: TestContext) {
  await ctx.s3.send(
    new PutBucketCorsCommand({
      Bucket: ctx.bucket,
      CORSConfiguration: { CORSRules: [{ AllowedOrigins: ["*"], AllowedMethods: ["PUT", "GET"], AllowedHeaders: ["*"], ExposeHeaders: ["ETag"] }] },
    }),
  );
}

describe.skipIf(missing !== undefined)(`the dashboard in Chromium${missing ? ` (skipped: ${missing})` : ""}`, () => {
  let ctx: TestContext;
  let services: Services;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  let s3Origin: string;

  beforeAll(async () => {
    ctx = await createTestContext();
    await allowBrowserUploads(ctx);
    s3Origin = new URL(ctx.config.S3_ENDPOINT!).origin;
    // Slow decoding, so a long batch is still running when it is cancelled.
    services = await startServices(ctx, { sim: { decodeTokensPerSec: 40, maxNumSeqs: 8 } });
    browser = await launchChromium();
    page = await browser.context.newPage();
    problems = watch(page, () => [new URL(services.apiUrl).origin, s3Origin]);
    await page.goto(services.apiUrl);
  });
  afterAll(async () => {
    await browser?.close();
    await services?.stop();
    await ctx?.close();
  });

  test("a file submitted from the page runs to 100% through a presigned PUT, and its download is the output file", async () => {
    const lines = Array.from({ length: 12 }, (_, i) => chatLine(`req-${i}`, `hello ${i}`, { max_tokens: 2 }));
    const puts: string[] = [];
    page.on("request", (r) => {
      if (r.method() === "PUT") puts.push(new URL(r.url()).origin);
    });
    await submitFile(page, "hello.jsonl", jsonl(lines));
    await page.waitForURL(/#\/batches\/batch_/);
    const id = /batch_[\w-]+/.exec(page.url())![0];
    expect(puts).toEqual([s3Origin]);
    await expect.poll(() => page.getByTestId("batch-status").textContent(), { timeout: 60_000 }).toBe("completed");
    const bar = page.locator("progress").first();
    expect([await bar.getAttribute("value"), await bar.getAttribute("max")]).toEqual(["12", "12"]);
    await expect.poll(() => page.getByText("100%").count()).toBe(1);

    const batch = (await (await fetch(`${services.apiUrl}/v1/batches/${id}`)).json()) as { output_file_id: string; request_counts: { completed: number } };
    expect(batch.request_counts.completed).toBe(12);
    const output = await (await fetch(`${services.apiUrl}/v1/files/${batch.output_file_id}/content`)).text();
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Download results" }).click()]);
    const saved = join(SHOTS, `${id}-download.jsonl`);
    await download.saveAs(saved);
    expect(readFileSync(saved, "utf8")).toBe(output);
    expect(output.trim().split("\n").map((l) => JSON.parse(l).custom_id)).toEqual(lines.map((l) => l.custom_id));
    await page.getByRole("heading", { name: "Timeline" }).waitFor();
    await expect.poll(() => page.locator(".timeline li").count()).toBeGreaterThan(2);
    await shot(page, "batch", true);
    expect(await axeViolations(page)).toEqual([]);
  });

  test("the batches list shows each batch's full id and progress, and filters by status", async () => {
    await page.getByRole("link", { name: "Batches" }).click();
    const row = page.locator("tr[data-batch]");
    await expect.poll(() => row.count()).toBe(1);
    const id = await row.first().getAttribute("data-batch");
    expect(await row.first().locator("code").textContent()).toBe(id);
    expect(await row.first().locator("progress").getAttribute("value")).toBe("12");
    await page.getByLabel("Status").selectOption("failed");
    await expect.poll(() => page.getByText("No batches with status failed.").count()).toBe(1);
    await page.getByLabel("Status").selectOption("");
    await expect.poll(() => row.count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
    await shot(page, "batches");
  });

  test("Cancel stops a running batch from its page", async () => {
    const lines = Array.from({ length: 400 }, (_, i) => chatLine(`long-${i}`, `slow ${i}`, { max_tokens: 200 }));
    await submitFile(page, "long.jsonl", jsonl(lines), "barge-sim-1");
    await page.waitForURL(/#\/batches\/batch_/);
    await expect.poll(() => page.getByTestId("batch-status").textContent(), { timeout: 30_000 }).toBe("in_progress");
    await page.getByRole("link", { name: "Download partial results" }).waitFor();
    await page.getByRole("button", { name: "Cancel" }).click();
    await expect.poll(() => page.getByTestId("batch-status").textContent(), { timeout: 60_000 }).toBe("cancelled");
    const id = /batch_[\w-]+/.exec(page.url())![0];
    const batch = (await (await fetch(`${services.apiUrl}/v1/batches/${id}`)).json()) as { status: string; model: string; request_counts: { total: number; completed: number } };
    expect([batch.status, batch.model, batch.request_counts.total]).toEqual(["cancelled", "barge-sim-1", 400]);
    expect(batch.request_counts.completed).toBeLessThan(400);
    expect(await page.getByRole("button", { name: "Cancel" }).isDisabled()).toBe(true);
  });

  test("an invalid file is refused with its line named", async () => {
    const body = Buffer.concat([jsonl([chatLine("ok-1", "fine")]), Buffer.from("{not json\n")]);
    await submitFile(page, "bad.jsonl", body);
    const alert = page.locator(".line-errors li");
    await expect.poll(() => alert.count(), { timeout: 30_000 }).toBeGreaterThan(0);
    expect(await alert.first().textContent()).toMatch(/^Line 2: /);
    await shot(page, "submit-invalid");
    expect(await axeViolations(page)).toEqual([]);
  });

  test("the overview shows the agent, its heartbeat and the queue, and the throughput chart; keyboard reaches every link", async () => {
    await page.getByRole("link", { name: "Overview" }).click();
    const agent = page.locator("tr[data-agent='test-agent-0']");
    await agent.waitFor();
    expect(await agent.locator("td").nth(1).textContent()).toBe("barge-sim-1");
    expect(await agent.locator("td").nth(3).textContent()).toMatch(/ago$/);
    expect(await page.getByTestId("queue-depth").textContent()).toMatch(/^\d+$/);
    await page.locator(".chart canvas").waitFor();
    expect(await axeViolations(page)).toEqual([]);
    await shot(page, "overview", true);
    // From the first link, Tab walks the nav in order and Enter follows the focused one.
    await page.getByRole("link", { name: "Overview" }).focus();
    const reached: string[] = [];
    for (let i = 0; i < 2; i++) {
      await page.keyboard.press("Tab");
      reached.push(String(await page.evaluate("document.activeElement?.textContent ?? ''")));
    }
    expect(reached).toEqual(["Batches", "Submit"]);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Submit a batch" }).waitFor();
  });

  test("the page logged no console error and asked nothing of any host but its own and S3", () => {
    // The one error Chromium logs is the refused upload's own answer (the invalid file above).
    expect(problems).toEqual(["console: Failed to load resource: the server responded with a status of 400 (Bad Request)"]);
  });
});

describe.skipIf(missing !== undefined)(`the dashboard with keys${missing ? ` (skipped: ${missing})` : ""}`, () => {
  const ADMIN = "admin-key-for-the-dashboard-suite";
  let ctx: TestContext;
  let services: Services;
  let browser: Browser;
  let keys: { a: string; b: string };

  beforeAll(async () => {
    ctx = await createTestContext({ BARGE_ADMIN_KEY: ADMIN });
    await allowBrowserUploads(ctx);
    keys = { a: await storeTenantKey(ctx.db, "team-a"), b: await storeTenantKey(ctx.db, "team-b") };
    services = await startServices(ctx);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await services?.stop();
    await ctx?.close();
  });

  /** A fresh tab signed in with `key`: its key lives in that tab's sessionStorage only. */
  async function signedIn(key: string) {
    const page = await browser.context.newPage();
    const problems = watch(page, () => [new URL(services.apiUrl).origin, new URL(ctx.config.S3_ENDPOINT!).origin]);
    const urls: string[] = [];
    page.on("request", (r) => urls.push(r.url()));
    await page.goto(services.apiUrl);
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.getByLabel("API key").fill(key);
    await page.keyboard.press("Enter");
    await page.getByRole("navigation", { name: "Main" }).waitFor();
    return { page, problems, urls };
  }

  test("each tenant signs in and sees only its own batches; the key never goes into a URL", async () => {
    const a = await signedIn(keys.a);
    await submitFile(a.page, "a.jsonl", jsonl([chatLine("a-1", "from a", { max_tokens: 2 })]));
    await a.page.waitForURL(/#\/batches\/batch_/);
    const idA = /batch_[\w-]+/.exec(a.page.url())![0];
    await expect.poll(() => a.page.getByTestId("batch-status").textContent(), { timeout: 60_000 }).toBe("completed");
    expect(await a.page.evaluate("sessionStorage.getItem('barge.apiKey')")).toBe(keys.a);
    expect(await a.page.evaluate("localStorage.length")).toBe(0);

    const b = await signedIn(keys.b);
    await b.page.getByRole("link", { name: "Batches" }).click();
    await expect.poll(() => b.page.getByText("No batches.").count()).toBe(1);
    expect(await b.page.locator("tr[data-batch]").count()).toBe(0);
    await b.page.goto(`${services.apiUrl}/#/batches/${idA}`);
    await expect.poll(() => b.page.getByText(`No batch found with id '${idA}'.`).count(), { timeout: 10_000 }).toBeGreaterThan(0);

    await a.page.getByRole("link", { name: "Batches" }).click();
    await expect.poll(() => a.page.locator("tr[data-batch]").count()).toBe(1);
    expect(await a.page.locator("tr[data-batch]").first().getAttribute("data-batch")).toBe(idA);
    for (const t of [a, b]) {
      expect(t.urls.filter((u) => u.includes(keys.a) || u.includes(keys.b))).toEqual([]);
      // b's look at a's batch is a 404 the page shows; nothing else went wrong.
      expect(t.problems.filter((p) => !p.includes("404"))).toEqual([]);
    }
    await a.page.close();
    await b.page.close();
  });

  test("the admin key sees every agent and each tenant's usage, and no tenant's batches", async () => {
    const admin = await signedIn(ADMIN);
    await admin.page.locator("tr[data-agent='test-agent-0']").waitFor();
    expect(await admin.page.getByRole("link", { name: "Batches" }).count()).toBe(0);
    await admin.page.getByRole("link", { name: "Usage" }).click();
    const row = admin.page.locator("tr[data-tenant='team-a'] td");
    await row.first().waitFor();
    expect(await row.nth(1).textContent()).toBe("1");
    expect(await admin.page.locator("tr[data-tenant='team-b']").count()).toBe(0);
    expect(await axeViolations(admin.page)).toEqual([]);
    await shot(admin.page, "usage");
    expect(admin.problems).toEqual([]);
    await admin.page.close();
  });
});
