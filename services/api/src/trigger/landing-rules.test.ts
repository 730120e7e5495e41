import { describe, expect, test } from "vitest";
import type { LandedObject } from "@barge/core";
import { ignoredBecause, isInboxKey, resultsPrefixFor } from "./landing-rules.js";

const cfg = { TRIGGER_PREFIX: "inbox/", TRIGGER_RESULTS_PREFIX: "results/" };
const at = (key: string, over: Partial<LandedObject> = {}): LandedObject => ({ bucket: "b", key, etag: "e", size: 1, versionId: null, ...over });

describe("which landed objects start a batch", () => {
  test("each refusal names its reason; a .jsonl under the prefix starts one", () => {
    expect(
      [
        at("inbox/a/b.jsonl"),
        at("inbox/a.jsonl", { bucket: "c" }),
        at("results/a.jsonl"),
        at("elsewhere/a.jsonl"),
        at("inbox/a.json"),
        at("inbox/.jsonl"),
        at("inbox/a.jsonl", { size: 0 }),
        at(`inbox/${"é".repeat(510)}.jsonl`),
        at("inbox/\ud800.jsonl"),
        at("inbox/a.jsonl", { versionId: "v\u0000" }),
      ].map((o) => ignoredBecause(o, "b", cfg)),
    ).toEqual([
      null,
      "another bucket",
      "under the results prefix",
      "outside the trigger prefix",
      "not a .jsonl key",
      "not a .jsonl key",
      "empty",
      "unstorable key",
      "unstorable key",
      "unstorable key",
    ]);
  });

  test("a results prefix inside the inbox is refused before the inbox admits it, so results never loop", () => {
    const nested = { TRIGGER_PREFIX: "inbox/", TRIGGER_RESULTS_PREFIX: "inbox/results/" };
    expect(ignoredBecause(at("inbox/results/x/output.jsonl"), "b", nested)).toBe("under the results prefix");
  });

  test("inbox/<path>.jsonl writes under results/<path>/; only inbox keys are the user's", () => {
    expect([resultsPrefixFor("inbox/a.jsonl", cfg), resultsPrefixFor("inbox/t/x.y.jsonl", cfg)]).toEqual(["results/a/", "results/t/x.y/"]);
    expect([isInboxKey("inbox/a.jsonl", cfg), isInboxKey("inputs/default/file-1.jsonl", cfg)]).toEqual([true, false]);
  });
});
