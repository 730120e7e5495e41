import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { chatPromptTokens } from "@barge/engine-sim";
import { MODEL, type SimSettings } from "./stack.js";
import { mulberry32 } from "@barge/devstack";

// Batch inputs: N chat-completions request lines streamed to a file, never held in memory,
// with the token counts engine-sim will charge for them (its own token counting, and
// max_tokens, which the sim generates exactly), so a benchmark knows the GPU work it asked for.

/** What the requests look like; lengths are drawn uniformly from [min, max]. */
export interface ChatShape {
  /** Characters of the user message. */
  promptChars: [number, number];
  /** max_tokens, which is exactly what the sim generates. */
  maxTokens: [number, number];
  /** A system message every request carries. */
  system?: string;
  seed?: number;
  /** Stop once the file reaches this many bytes (then `n` is only an upper bound). */
  maxBytes?: number;
}

export interface Workload {
  path: string;
  requests: number;
  bytes: number;
  promptTokens: number;
  completionTokens: number;
}

const WORDS = [
  "batch", "model", "token", "river", "stone", "cloud", "paper", "light", "green", "quick", "table", "music",
  "seven", "north", "plant", "glass", "ocean", "story", "bread", "field", "sound", "train", "winter", "garden",
  "summarize", "translate", "explain", "classify", "extract", "review", "answer", "the", "of", "and", "to", "in",
];

/** A long text of plain words (nothing JSON must escape) to cut prompts from. */
export function wordText(rand: () => number, chars: number): string {
  let text = "";
  while (text.length < chars) text += `${WORDS[Math.floor(rand() * WORDS.length)]} `;
  return text;
}

function between(rand: () => number, [lo, hi]: [number, number]): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

/** Writes `n` request lines (`custom_id` req-0 ... req-<n-1>) to `path`, or fewer when `shape.maxBytes` is reached first. */
export async function writeChatJsonl(path: string, n: number, shape: ChatShape): Promise<Workload> {
  const rand = mulberry32(shape.seed ?? 42);
  const maxPrompt = shape.promptChars[1];
  const corpus = wordText(rand, 64 * 1024 + maxPrompt);
  const out = createWriteStream(path);
  const failed = new Promise<never>((_, reject) => out.once("error", reject));
  failed.catch(() => undefined);
  let buf = "";
  let bytes = 0;
  let promptTokens = 0;
  let completionTokens = 0;
  let written = 0;
  const limit = shape.maxBytes ?? Infinity;
  for (let i = 0; i < n && bytes + buf.length < limit; i++) {
    written++;
    const len = between(rand, shape.promptChars);
    const start = Math.floor(rand() * (corpus.length - len));
    const messages = [
      ...(shape.system ? [{ role: "system", content: shape.system }] : []),
      { role: "user", content: `request ${i}: ${corpus.slice(start, start + len)}` },
    ];
    const maxTokens = between(rand, shape.maxTokens);
    promptTokens += chatPromptTokens(messages);
    completionTokens += maxTokens;
    buf += `${JSON.stringify({ custom_id: `req-${i}`, method: "POST", url: "/v1/chat/completions", body: { model: MODEL, messages, max_tokens: maxTokens } })}\n`;
    if (buf.length >= 1 << 20) {
      bytes += Buffer.byteLength(buf);
      if (!out.write(buf)) await Promise.race([once(out, "drain"), failed]);
      buf = "";
    }
  }
  bytes += Buffer.byteLength(buf);
  out.end(buf);
  await Promise.race([once(out, "finish"), failed]);
  return { path, requests: written, bytes, promptTokens, completionTokens };
}

/** Total GPU service time of a workload on the sim: every request's prefill plus decode time. */
export function serviceSeconds(w: Pick<Workload, "promptTokens" | "completionTokens">, sim: SimSettings): number {
  const term = (tokens: number, rate: number) => (rate === 0 || rate === Infinity ? 0 : tokens / rate);
  return term(w.promptTokens, sim.prefillTokensPerSec) + term(w.completionTokens, sim.decodeTokensPerSec);
}

/** The sim's minimum time for a workload: every slot busy from start to end (Σ service / max_num_seqs). */
export function idealMakespanSeconds(w: Pick<Workload, "promptTokens" | "completionTokens">, sim: SimSettings): number {
  return serviceSeconds(w, sim) / sim.maxNumSeqs;
}
