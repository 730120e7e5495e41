import { describe, expect, it } from "vitest";
import { chatPromptTokens, completionPromptTokens, contentText, countTokens, embeddingInputTokens, inputTokens } from "./tokens.js";

describe("countTokens", () => {
  it("is ceil(chars / 4), at least 1 for non-empty text, 0 for empty", () => {
    expect(countTokens("")).toBe(0);
    expect(countTokens("a")).toBe(1);
    expect(countTokens("abcd")).toBe(1);
    expect(countTokens("abcde")).toBe(2);
    expect(countTokens("x".repeat(400))).toBe(100);
    expect(countTokens("x".repeat(401))).toBe(101);
  });
});

describe("prompt token counting", () => {
  it("counts chat messages with string and text-part content plus 4 per message", () => {
    const messages = [
      { role: "system", content: "abcdefgh" }, // 2 + 4
      { role: "user", content: [{ type: "text", text: "abcd" }, { type: "image_url", image_url: { url: "x" } }, { type: "text", text: "e" }] }, // "abcde" = 2 + 4
      { role: "assistant", content: null }, // 0 + 4
    ];
    expect(contentText(messages[1]?.content)).toBe("abcde");
    expect(chatPromptTokens(messages)).toBe(16);
  });

  it("counts completions prompts as a string or a list", () => {
    expect(completionPromptTokens("abcdefghi")).toBe(3);
    expect(completionPromptTokens(["abcd", "abcde", "a"])).toBe(4);
  });

  it("counts embeddings inputs, token arrays by their length", () => {
    expect(embeddingInputTokens("abcdefgh")).toBe(2);
    expect(embeddingInputTokens(["abcd", "abcdefghi"])).toBe(4);
    expect(embeddingInputTokens([5, 6, 7])).toBe(3);
    expect(embeddingInputTokens([[1, 2], [3, 4, 5, 6, 7]])).toBe(7);
    expect(inputTokens([9, 9])).toBe(2);
  });
});
