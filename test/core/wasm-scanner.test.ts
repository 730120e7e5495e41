import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileScanner, SCANNER_MODULE, scannerModuleText } from "../../infra/build-wasm.js";
import { scanRequestLine, scanState, type ScannedRequest } from "../../services/core/src/domain/request-line-scan.js";

// The scanner ships as a generated module; a source edit without `pnpm build:wasm` would test
// and run the old binary.
describe("the request-line scanner's WebAssembly module", () => {
  it("is what its AssemblyScript source compiles to now", async () => {
    const binary = await compileScanner();
    expect(binary.length).toBeGreaterThan(1000);
    expect(readFileSync(SCANNER_MODULE, "utf8")).toBe(scannerModuleText(binary));
  });
});

// The text rules are the contract's to word; the scanner must leave every such line to it.
describe("the request-line scanner and the text rules", () => {
  const ok = '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","x":1}}';
  const out: ScannedRequest = { customIdStart: 0, customIdEnd: 0, url: "", model: "", stream: false };
  const scan = (b: Buffer) => scanRequestLine(b, 0, b.length, out);
  const swap = (from: string, to: Buffer) => {
    const at = ok.indexOf(from);
    return Buffer.concat([Buffer.from(ok.slice(0, at)), to, Buffer.from(ok.slice(at + from.length))]);
  };

  it("accepts the plain line these cases are made from", () => {
    expect(scan(Buffer.from(ok))).toBe(true);
  });

  it.each([
    ["raw NUL in custom_id", swap('"a"', Buffer.from('"a\0"'))],
    ["escaped NUL in custom_id", swap('"a"', Buffer.from('"a\\u0000"'))],
    ["raw NUL in method", swap('"POST"', Buffer.from('"POST\0"'))],
    ["escaped NUL in url", swap('"/v1/chat/completions"', Buffer.from('"/v1/chat/completions\\u0000"'))],
    ["escaped NUL in body.model", swap('"m"', Buffer.from('"m\\u0000"'))],
    ["raw NUL in body.model", swap('"m"', Buffer.from('"m\0"'))],
    ["lone surrogate escape in custom_id", swap('"a"', Buffer.from('"\\ud800"'))],
    ["invalid UTF-8 in custom_id", swap('"a"', Buffer.from([0x22, 0x61, 0xff, 0x22]))],
    ["invalid UTF-8 in another key's value", swap('"x":1', Buffer.from([0x22, 0x78, 0x22, 0x3a, 0x22, 0xc3, 0x22]))],
    ["a UTF-8 surrogate's bytes in body.model", swap('"m"', Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]))],
    ["invalid UTF-8 at the end", Buffer.concat([Buffer.from(ok), Buffer.from([0x20, 0xff])])],
    ["a byte order mark", Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(ok)])],
    ["nesting 129 deep", swap('"x":1', Buffer.from(`"x":${"[".repeat(127)}${"]".repeat(127)}`))],
  ])("leaves %s to the contract", (_name, line) => {
    expect(scan(line)).toBe(false);
  });

  it("reads the lines of a buffer with one bad line past it as UTF-8 lines", () => {
    const b = Buffer.concat([Buffer.from(`${ok}\n`), swap('"a"', Buffer.from([0x22, 0x62, 0xff, 0x22]))]);
    const s = scanState(b);
    expect(s.utf8).toBe(false);
    expect(scanRequestLine(b, 0, ok.length, out, s)).toBe(true);
    expect(b.toString("utf8", out.customIdStart, out.customIdEnd)).toBe("a");
    expect(scanRequestLine(b, ok.length + 1, b.length, out, s)).toBe(false);
  });
});
