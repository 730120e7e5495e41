import { describe, expect, test } from "vitest";
import { inboxFirstSegment } from "./inbox-owner.js";

const cfg = { TRIGGER_PREFIX: "inbox/" };

describe("the tenant an inbox key could name", () => {
  test("a folder or a file name that is a tenant's name, exactly; anything else none", () => {
    expect(
      [
        "inbox/acme/a.jsonl",
        "inbox/acme/deep/er/a.jsonl",
        "inbox/acme.jsonl",
        "inbox/Acme_2/a.jsonl",
        `inbox/${"a".repeat(64)}/a.jsonl`,
        `inbox/${"a".repeat(65)}/a.jsonl`,
        "inbox//a.jsonl",
        "inbox/-acme/a.jsonl",
        "inbox/team a/a.jsonl",
        "inbox/acmé/a.jsonl",
        "inbox/a.b.jsonl",
      ].map((k) => inboxFirstSegment(k, cfg)),
    ).toEqual([
      { name: "acme", folder: true },
      { name: "acme", folder: true },
      { name: "acme", folder: false },
      { name: "Acme_2", folder: true },
      { name: "a".repeat(64), folder: true },
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });
});
