import { describe, expect, it } from "vitest";
import { MAX_STORABLE_CHARS, storableText } from "./storable-text.js";

describe("storableText", () => {
  it("drops U+0000 and replaces lone surrogates, keeping pairs", () => {
    expect(storableText("a\u0000b\u0000")).toBe("ab");
    expect(storableText("x\ud800y\udc00z")).toBe("x\ufffdy\ufffdz");
    expect(storableText("emoji \ud83d\ude00 ok")).toBe("emoji \ud83d\ude00 ok");
    expect(storableText("plain")).toBe("plain");
  });

  it("caps the length without splitting a surrogate pair", () => {
    expect(storableText("a".repeat(MAX_STORABLE_CHARS + 5))).toHaveLength(MAX_STORABLE_CHARS);
    expect(storableText("abcdef", 3)).toBe("abc");
    // The pair would straddle the cap: it goes whole.
    expect(storableText("ab\ud83d\ude00", 3)).toBe("ab");
    // NULs removed before the cap is applied.
    expect(storableText("\u0000\u0000abc", 3)).toBe("abc");
  });
});
