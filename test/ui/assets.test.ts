import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildDashboard, DASHBOARD_MODULE, dashboardModuleText } from "../../infra/build-dashboard.js";

// The dashboard ships as a generated module; a page edit without `pnpm build:dashboard` would
// test and serve the old page.
describe("the dashboard's committed assets", () => {
  it("are what services/dashboard/web builds to now", async () => {
    const assets = await buildDashboard();
    expect(assets["app.js"]).toContain("/ui/session");
    expect(assets["index.html"]).toContain('src="/ui/app.js"');
    expect(readFileSync(DASHBOARD_MODULE, "utf8")).toBe(dashboardModuleText(assets));
  });

  it("load nothing from another host", async () => {
    const assets = await buildDashboard();
    expect(assets["index.html"].match(/(?:src|href)="[^"]*"/g)).toEqual(['href="data:,"', 'href="/ui/app.css"', 'src="/ui/app.js"']);
    expect(assets["app.css"]).not.toMatch(/@import|url\(\s*["']?https?:/);
  });
});
