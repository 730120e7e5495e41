import { hex32, mix32, mulberry32 } from "./prng.js";

// The deterministic filler behind every body: seeded words, unit vectors and ids. Each is a pure
// function of its seed, so the same request always yields the same bytes.

/** Natural completion length range when the request sets no max tokens. */
export const MIN_COMPLETION_TOKENS = 8;
export const MAX_COMPLETION_TOKENS = 48;

const CONSONANTS = "bcdfghklmnprstvz";
const VOWELS = "aeiou";

/** Why a completion ended, in OpenAI's terms. */
export type FinishReason = "stop" | "length";

/** One generated completion: its text, its token count and why it stopped. */
export interface Completion {
  text: string;
  tokens: number;
  finishReason: FinishReason;
}

/** A completion of exactly the requested length (finish "length"), else a seeded 8..48 tokens cut to the context window. */
export function complete(seed: number, promptTokens: number, maxTokens: number | null, maxModelLen: number): Completion {
  const rand = mulberry32(seed);
  // Always drawn, so the words are the same whether or not max tokens is set.
  const natural = MIN_COMPLETION_TOKENS + Math.floor(rand() * (MAX_COMPLETION_TOKENS - MIN_COMPLETION_TOKENS + 1));
  let tokens = maxTokens ?? natural;
  let finishReason: FinishReason = maxTokens === null ? "stop" : "length";
  if (promptTokens + tokens > maxModelLen) {
    tokens = maxModelLen - promptTokens;
    finishReason = "length";
  }
  return { text: pseudoWords(rand, tokens), tokens, finishReason };
}

/** `count` 3-letter words joined by single spaces: 4 chars per token minus the missing trailing space, so countTokens(text) === count. */
function pseudoWords(rand: () => number, count: number): string {
  let text = "";
  for (let i = 0; i < count; i++) {
    if (i > 0) text += " ";
    text +=
      CONSONANTS.charAt(Math.floor(rand() * CONSONANTS.length)) +
      VOWELS.charAt(Math.floor(rand() * VOWELS.length)) +
      CONSONANTS.charAt(Math.floor(rand() * CONSONANTS.length));
  }
  return text;
}

/** A seeded embedding vector of unit length. */
export function unitVector(seed: number, dimensions: number): Float32Array {
  const rand = mulberry32(seed);
  const raw = new Float64Array(dimensions);
  let sumSquares = 0;
  for (let i = 0; i < dimensions; i++) {
    const x = rand() * 2 - 1;
    raw[i] = x;
    sumSquares += x * x;
  }
  // Rounded to float32 once, here, so the float and base64 encodings carry identical values.
  const norm = Math.sqrt(sumSquares);
  const vector = new Float32Array(dimensions);
  for (let i = 0; i < dimensions; i++) vector[i] = (raw[i] ?? 0) / norm;
  return vector;
}

/** Base64 of little-endian float32 bytes, the encoding the openai SDK requests by default. */
export function float32Base64(vector: Float32Array): string {
  const bytes = Buffer.alloc(vector.length * 4);
  for (let i = 0; i < vector.length; i++) bytes.writeFloatLE(vector[i] ?? 0, i * 4);
  return bytes.toString("base64");
}

/** The 16-hex-digit id of a body: its content hash mixed with the parameters that change its output. */
export function idHex(h1: number, h2: number, maxTokens: number | null, n: number): string {
  const params = mix32(Math.imul(maxTokens ?? 0, 0x9e3779b1) ^ Math.imul(n, 0x85ebca77));
  return hex32(mix32(h1 ^ params)) + hex32(mix32(h2 + params));
}
