import type { Page } from "playwright-core";

// What the dashboard suites do to and watch on a page, shared by the suites in this folder.

/** What a page did that the suites forbid: console errors, uncaught errors, requests off its allowed origins. */
export function watch(page: Page, allowed: () => string[]): string[] {
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("request", (r) => {
    const url = r.url();
    if (url.startsWith("blob:") || url.startsWith("data:")) return;
    if (!allowed().includes(new URL(url).origin)) problems.push(`request off origin: ${url}`);
  });
  return problems;
}

/** JSONL bytes, one line per value. */
export const jsonl = (lines: unknown[]): Buffer => Buffer.from(lines.map((l) => JSON.stringify(l)).join("\n") + "\n");

/** Picks a file in the Submit page's input and presses Submit. */
export async function submitFile(page: Page, name: string, body: Buffer, model?: string): Promise<void> {
  await page.getByRole("link", { name: "Submit" }).click();
  await page.getByLabel("Requests file (.jsonl)").setInputFiles({ name, mimeType: "application/jsonl", buffer: body });
  if (model) await page.getByLabel(/^Model/).fill(model);
  await page.getByRole("button", { name: "Submit" }).click();
}
