import { describe, expect, test } from "vitest";
import { internalAddressIn, internalDestination, isInternalAddress, publicOnlyLookup } from "./destination.js";

describe("webhook destinations", () => {
  test("internal addresses: loopback, private, link-local, shared, reserved, mapped", () => {
    const internal = ["127.0.0.1", "127.9.9.9", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "198.18.0.1", "::1", "::", "fe80::1", "fd12::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:7f00:1", "::ffff:a9fe:a9fe", "64:ff9b::a00:1", "not-an-ip"];
    const external = ["8.8.8.8", "172.32.0.1", "192.169.0.1", "100.128.0.1", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8", "::ffff:808:808"];
    expect(internal.filter((a) => !isInternalAddress(a))).toEqual([]);
    expect(external.filter((a) => isInternalAddress(a))).toEqual([]);
  });

  test("URLs: literal addresses and localhost names are internal as written, other names only as they resolve", () => {
    expect(internalDestination("http://[::1]:8080/x")).toBe("::1 is an internal address");
    expect(internalDestination("http://[::ffff:169.254.169.254]/x")).toBe("::ffff:a9fe:a9fe is an internal address");
    expect(internalDestination("http://[::ffff:8.8.8.8]/x")).toBeNull();
    expect(internalDestination("http://Localhost./x")).toBe("'localhost' is this host");
    expect(internalDestination("https://hooks.example.com/x")).toBeNull();
    expect(internalAddressIn("http://localhost/x")).toBeNull();
    expect(internalAddressIn("http://10.2.3.4/x")).toBe("10.2.3.4 is an internal address");
  });

  test("the connection lookup refuses a name that resolves to an internal address", async () => {
    const result = await new Promise<{ err: Error | null; address: unknown }>((resolve) =>
      publicOnlyLookup("localhost", { family: 4 }, (err, address) => resolve({ err, address })),
    );
    expect(result.err?.name).toBe("InternalDestination");
    expect(result.err?.message).toBe("localhost resolves to 127.0.0.1, an internal address");
  });
});
