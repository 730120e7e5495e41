import { describe, expect, it } from "vitest";
import { FingerprintSet } from "./fingerprint-set.js";

describe("FingerprintSet.addUtf8", () => {
  it("sees the same strings as add, from their UTF-8 bytes, ASCII or not", () => {
    const ids = ["req-1", "a", "x".repeat(600), "é", "日本-😀", "req-2"];
    const set = new FingerprintSet(4);
    for (const id of ids) expect(set.add(id)).toBe(true);
    // Each again, as bytes inside a larger buffer: every one is already there.
    for (const id of ids) {
      const b = Buffer.concat([Buffer.from("{{"), Buffer.from(id), Buffer.from("}}")]);
      expect(set.addUtf8(b, 2, b.length - 2)).toBe(false);
    }
    const fresh = Buffer.from("..req-3..");
    expect(set.addUtf8(fresh, 2, 7)).toBe(true);
    expect(set.add("req-3")).toBe(false);
  });

  it("counts bytes that decode to the same text as the same custom_id, as JSON.parse would", () => {
    // Both invalid sequences decode to "a\uFFFD".
    const set = new FingerprintSet();
    expect(set.addUtf8(Buffer.from([0x61, 0xff]), 0, 2)).toBe(true);
    expect(set.addUtf8(Buffer.from([0x61, 0xfe]), 0, 2)).toBe(false);
    expect(set.add("a\uFFFD")).toBe(false);
  });
});

describe("FingerprintSet growth", () => {
  it("keeps every entry through rehashes from a short guess, and reserve", () => {
    const set = new FingerprintSet(4);
    for (let i = 0; i < 10_000; i++) expect(set.add(`id-${i}`)).toBe(true);
    set.reserve(50_000);
    let again = 0;
    for (let i = 0; i < 10_000; i++) if (!set.add(`id-${i}`)) again++;
    expect(again).toBe(10_000);
    expect(set.add("id-10000")).toBe(true);
  });
});
