import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileScanner, SCANNER_MODULE, scannerModuleText } from "../../infra/build-wasm.js";

// The scanner ships as a generated module; a source edit without `pnpm build:wasm` would test
// and run the old binary.
describe("the request-line scanner's WebAssembly module", () => {
  it("is what its AssemblyScript source compiles to now", async () => {
    const binary = await compileScanner();
    expect(binary.length).toBeGreaterThan(1000);
    expect(readFileSync(SCANNER_MODULE, "utf8")).toBe(scannerModuleText(binary));
  });
});
