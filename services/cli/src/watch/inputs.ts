import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { STATE_FILE } from "./state.js";

/** True for the names `barge watch` submits: top-level `*.jsonl`, not its own outputs nor hidden files. */
export function isWatchInput(name: string): boolean {
  return (
    name.endsWith(".jsonl") &&
    !name.endsWith(".output.jsonl") &&
    !name.endsWith(".errors.jsonl") &&
    !name.startsWith(".") &&
    name !== STATE_FILE
  );
}

/** `x.jsonl` → `x.output.jsonl` / `x.errors.jsonl`. */
export function resultNames(name: string): { output: string; errors: string } {
  const stem = name.slice(0, -".jsonl".length);
  return { output: `${stem}.output.jsonl`, errors: `${stem}.errors.jsonl` };
}

/** The content's sha256, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}

const lineUrl = z.looseObject({ url: z.string().startsWith("/v1/") });

/**
 * The endpoint the file's first line names (the lines carry it, as in OpenAI's batch files). A
 * first line that names none falls back to chat completions: the API's validator then names the
 * bad lines, so the user sees one kind of error whatever is wrong.
 */
export async function endpointOf(path: string): Promise<string> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (!line.trim()) continue;
      try {
        const parsed = lineUrl.safeParse(JSON.parse(line));
        if (parsed.success) return parsed.data.url;
      } catch {}
      break;
    }
  } finally {
    lines.close();
  }
  return "/v1/chat/completions";
}
