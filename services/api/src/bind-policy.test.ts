import { describe, expect, it } from "vitest";
import { bindRefusal, isLoopbackHost } from "./bind-policy.js";

const noKeys = { BARGE_API_KEY: undefined, BARGE_ADMIN_KEY: undefined, BARGE_TRUSTED_NETWORK: false };

describe("bind policy", () => {
  it("counts 127.0.0.0/8, ::1 (bracketed too), ::ffff:127.x and localhost as loopback, and nothing else", () => {
    const loopback = ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "::ffff:127.0.0.1", "localhost", "LOCALHOST"];
    const exposed = ["0.0.0.0", "::", "[::]", "10.0.0.5", "192.168.1.2", "::ffff:10.0.0.1", "128.0.0.1", "api.internal", "localhost.example.com", ""];
    expect(loopback.filter(isLoopbackHost)).toEqual(loopback);
    expect(exposed.filter(isLoopbackHost)).toEqual([]);
  });

  it("refuses an exposed host only while no key and no trusted-network opt-out is set", () => {
    expect(bindRefusal("127.0.0.1", noKeys)).toBeUndefined();
    expect(bindRefusal("::", noKeys)).toBe(
      "refusing to serve the API on :: without a key: set BARGE_API_KEY or BARGE_ADMIN_KEY, bind API_HOST=127.0.0.1, or set BARGE_TRUSTED_NETWORK=true if every client on that network is trusted",
    );
    expect(bindRefusal("0.0.0.0", { ...noKeys, BARGE_API_KEY: "k" })).toBeUndefined();
    expect(bindRefusal("0.0.0.0", { ...noKeys, BARGE_ADMIN_KEY: "admin-key-0123456789" })).toBeUndefined();
    expect(bindRefusal("0.0.0.0", { ...noKeys, BARGE_TRUSTED_NETWORK: true })).toBeUndefined();
  });
});
