import { describe, expect, it } from "vitest";
import { newId, pooledIds } from "./ids.js";

describe("pooledIds", () => {
  it("makes distinct batch_req_ ids in newId's format across pool refills", () => {
    const next = pooledIds("batch_req_");
    const ids = Array.from({ length: 1000 }, () => next());
    expect(new Set(ids).size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^batch_req_[0-9a-z]{9}[0-9a-z]{15}$/);
    // The time prefix orders ids as newId's does.
    const before = Date.now().toString(36).padStart(9, "0");
    expect(next().slice("batch_req_".length, "batch_req_".length + 9) >= before).toBe(true);
    expect(newId("batch_req_")).toMatch(/^batch_req_[0-9a-z]{9}[0-9a-z]{15}$/);
  });
});
