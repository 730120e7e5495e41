import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { produceAtomic, writeFileAtomic } from "./atomic.js";
import { endpointOf, isWatchInput, resultNames } from "./inputs.js";
import { STATE_FILE, WatchState, type WatchEntry } from "./state.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "barge-watch-unit-"));
  dirs.push(d);
  return d;
}

const entry = (over: Partial<WatchEntry> = {}): WatchEntry => ({
  sha256: "a".repeat(64),
  size: 10,
  batch_id: "batch_1",
  phase: "submitted",
  status: "in_progress",
  message: null,
  ...over,
});

describe("which names barge watch takes", () => {
  it("takes top-level *.jsonl, never its own outputs, hidden files or its state", () => {
    const names = ["a.jsonl", "a.b.jsonl", "a.output.jsonl", "a.errors.jsonl", ".a.jsonl", ".a.output.jsonl.12.tmp", "a.json", "a.jsonl.part", STATE_FILE];
    expect(names.filter(isWatchInput)).toEqual(["a.jsonl", "a.b.jsonl"]);
    expect(resultNames("a.b.jsonl")).toEqual({ output: "a.b.output.jsonl", errors: "a.b.errors.jsonl" });
  });

  it("reads the endpoint from the first line's url, else falls back to chat completions", async () => {
    const dir = tempDir();
    const file = (name: string, text: string) => (writeFileSync(join(dir, name), text), join(dir, name));
    expect(await endpointOf(file("e.jsonl", '\n\n{"custom_id":"1","url":"/v1/embeddings"}\n{"url":"/v1/responses"}\n'))).toBe("/v1/embeddings");
    expect(await endpointOf(file("bad.jsonl", '{not json\n{"url":"/v1/embeddings"}\n'))).toBe("/v1/chat/completions");
    expect(await endpointOf(file("odd.jsonl", '{"url":"https://elsewhere/v1/embeddings"}\n'))).toBe("/v1/chat/completions");
    expect(await endpointOf(file("empty.jsonl", ""))).toBe("/v1/chat/completions");
  });
});

describe("the state file", () => {
  it("starts empty, keeps saves in order and reads back what was saved, leaving no temp file", async () => {
    const dir = tempDir();
    const s = await WatchState.load(dir);
    expect(s.files.size).toBe(0);
    void s.set("a.jsonl", entry());
    void s.set("b.jsonl", entry({ batch_id: "batch_2" }));
    await s.set("a.jsonl", entry({ phase: "finished", status: "completed" }));
    const again = await WatchState.load(dir);
    expect(Object.fromEntries(again.files)).toEqual({
      "a.jsonl": entry({ phase: "finished", status: "completed" }),
      "b.jsonl": entry({ batch_id: "batch_2" }),
    });
    expect(readdirSync(dir)).toEqual([STATE_FILE]);
  });

  it("refuses a corrupt state file instead of starting over (which would resubmit everything)", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, STATE_FILE), '{"version":1,"files":{"a.jsonl":{"sha256":"nope"}}}');
    await expect(WatchState.load(dir)).rejects.toThrow(`${join(dir, STATE_FILE)} is not a barge watch state file`);
    writeFileSync(join(dir, STATE_FILE), "{");
    await expect(WatchState.load(dir)).rejects.toThrow("move it away to start over");
  });
});

describe("atomic writes", () => {
  it("replace the whole file, and a failed producer leaves the old content and no temp file", async () => {
    const dir = tempDir();
    const path = join(dir, "x.output.jsonl");
    await writeFileAtomic(path, "old\n");
    await expect(
      produceAtomic(path, async (tmp) => {
        writeFileSync(tmp, "half");
        throw new Error("download failed");
      }),
    ).rejects.toThrow("download failed");
    expect(readFileSync(path, "utf8")).toBe("old\n");
    expect(readdirSync(dir)).toEqual(["x.output.jsonl"]);
    await writeFileAtomic(path, "new\n");
    expect(readFileSync(path, "utf8")).toBe("new\n");
  });
});
