import { isRecord } from "./json.js";

// The sim has no tokenizer; every count in it (prompt, completion, context-length checks, the
// GPU service time) goes through these functions so the numbers agree with each other.

/** Fixed per-message overhead (role and chat-template markers), as in OpenAI's own estimates. */
export const MESSAGE_OVERHEAD_TOKENS = 4;

/** Simulated token count of a text: one token per 4 UTF-16 code units, rounded up (so any non-empty text is at least 1). */
export function countTokens(text: string): number {
  return text.length === 0 ? 0 : Math.ceil(text.length / 4);
}

/** Text of an OpenAI message content: a string, or the concatenated `text` of its parts (image/audio parts contribute nothing). */
export function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  let text = "";
  for (const part of content) {
    if (isRecord(part) && typeof part.text === "string") text += part.text;
  }
  return text;
}

/** Prompt tokens of a chat `messages` array: each message's content tokens plus MESSAGE_OVERHEAD_TOKENS. */
export function chatPromptTokens(messages: readonly unknown[]): number {
  let total = 0;
  for (const message of messages) {
    total += MESSAGE_OVERHEAD_TOKENS + countTokens(isRecord(message) ? contentText(message.content) : "");
  }
  return total;
}

/** One prompt or input as the OpenAI API accepts it: text, or already-tokenized ids. */
export type PromptInput = string | readonly number[];

/** Tokens of one prompt/input: text by countTokens, a token-id array by its length. */
export function inputTokens(input: PromptInput): number {
  return typeof input === "string" ? countTokens(input) : input.length;
}

/** Prompt tokens of a completions `prompt` (string or string[]); a list counts every prompt. */
export function completionPromptTokens(prompt: string | readonly string[]): number {
  if (typeof prompt === "string") return countTokens(prompt);
  let total = 0;
  for (const p of prompt) total += countTokens(p);
  return total;
}

/** Prompt tokens of an embeddings `input`: a string, string[], token array, or array of token arrays. */
export function embeddingInputTokens(input: string | readonly string[] | readonly number[] | readonly (readonly number[])[]): number {
  if (typeof input === "string") return countTokens(input);
  if (input.length > 0 && typeof input[0] === "number") return input.length;
  let total = 0;
  for (const item of input as readonly PromptInput[]) total += inputTokens(item);
  return total;
}
