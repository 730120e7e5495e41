import { describe, expect, it } from "vitest";
import { createLineIds } from "./line-ids.js";

describe("createLineIds", () => {
  it("makes distinct batch_req_ ids in core's format across pool refills", () => {
    const next = createLineIds();
    const ids = Array.from({ length: 1000 }, () => next());
    expect(new Set(ids).size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^batch_req_[0-9a-z]{9}[0-9a-z]{15}$/);
    // The time prefix orders ids as core's newId does.
    const before = Date.now().toString(36).padStart(9, "0");
    expect(next().slice("batch_req_".length, "batch_req_".length + 9) >= before).toBe(true);
  });
});
