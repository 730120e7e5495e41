import { describe, expect, test } from "vitest";
import { internalAddressIn, internalDestination, isInternalAddress, publicOnlyLookup, redactUrl } from "./destination.js";

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

  // Each form with its verdict; every spelling of one address must get the same one.
  const verdicts: [string, boolean][] = [
    // IPv4-compatible (::/96): the embedded IPv4 address, whatever it is.
    ["::127.0.0.1", true],
    ["::7f00:1", true],
    ["0:0:0:0:0:0:7f00:1", true],
    ["0000:0000:0000:0000:0000:0000:127.0.0.1", true],
    ["::8.8.8.8", true],
    ["::", true],
    ["::1", true],
    ["0:0:0:0:0:0:0:1", true],
    // IPv4-mapped (::ffff:0:0/96): the verdict of the IPv4 address inside, in every spelling.
    ["::ffff:127.0.0.1", true],
    ["::ffff:7f00:1", true],
    ["::FFFF:7F00:0001", true],
    ["0:0:0:0:0:ffff:7f00:1", true],
    ["0000:0000:0000:0000:0000:ffff:127.0.0.1", true],
    ["::ffff:a9fe:a9fe", true],
    ["::ffff:c0a8:101", true],
    ["::ffff:8.8.8.8", false],
    ["::ffff:808:808", false],
    ["0:0:0:0:0:ffff:808:808", false],
    // SIIT (::ffff:0:0:0/96).
    ["::ffff:0:7f00:1", true],
    ["::ffff:0:808:808", true],
    ["0:0:0:0:ffff:0:0:0", true],
    // NAT64, well-known and local-use prefixes.
    ["64:ff9b::a00:1", true],
    ["64:ff9b::8.8.8.8", true],
    ["64:ff9b:1::1", true],
    ["64:ff9b:1:ffff:ffff:ffff:ffff:ffff", true],
    ["64:ff9b:2::1", false],
    // 6to4 and Teredo.
    ["2002::1", true],
    ["2002:7f00:1::1", true],
    ["2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true],
    ["2001::1", true],
    ["2001:0000:4136:e378:8000:63bf:3fff:fdd2", true],
    ["2001:0:ffff:ffff:ffff:ffff:ffff:ffff", true],
    ["2001:1::1", false],
    ["2003::1", false],
    // Site-local (fec0::/10), unique-local, link-local, multicast.
    ["fec0::1", true],
    ["feff:ffff::1", true],
    ["fc00::1", true],
    ["fdff:ffff::1", true],
    ["fe80::1", true],
    ["febf::1", true],
    ["ff02::1", true],
    // Public IPv6.
    ["2001:4860:4860::8888", false],
    ["2001:4860:4860:0:0:0:0:8888", false],
    ["2606:4700:4700::1111", false],
    ["fbff::1", false],
    ["fe00::1", false],
  ];
  test.each(verdicts)("%s is internal: %s", (address, internal) => {
    expect(isInternalAddress(address)).toBe(internal);
  });

  test("URLs with IPv6 forms that carry an internal IPv4 address are internal as written", () => {
    expect(internalDestination("http://[::127.0.0.1]:8080/x")).toBe("::7f00:1 is an internal address");
    expect(internalDestination("http://[0:0:0:0:0:ffff:7f00:1]/x")).toBe("::ffff:7f00:1 is an internal address");
    expect(internalDestination("http://[::ffff:0:a9fe:a9fe]/x")).toBe("::ffff:0:a9fe:a9fe is an internal address");
    expect(internalDestination("http://[64:ff9b:1::a00:1]/x")).toBe("64:ff9b:1::a00:1 is an internal address");
    expect(internalDestination("http://[2002:a9fe:a9fe::]/x")).toBe("2002:a9fe:a9fe:: is an internal address");
    expect(internalDestination("http://[2001:0:4136:e378::1]/x")).toBe("2001:0:4136:e378::1 is an internal address");
    expect(internalDestination("http://[FEC0::1]/x")).toBe("fec0::1 is an internal address");
    expect(internalDestination("http://[2606:4700:4700::1111]/x")).toBeNull();
  });

  test("redactUrl keeps scheme, host, port and path, and drops userinfo, query and fragment", () => {
    expect(redactUrl("https://user:tok@host/p?token=x")).toBe("https://host/p");
    expect(redactUrl("https://user:tok@host/p?token=x#frag")).toBe("https://host/p");
    expect(redactUrl("http://:secret@Hooks.Example.com:8443/a/b?")).toBe("http://hooks.example.com:8443/a/b");
    expect(redactUrl("http://tok@[::1]:9/x?a=1&b=2")).toBe("http://[::1]:9/x");
    expect(redactUrl("https://host")).toBe("https://host/");
    expect(redactUrl("not a url ?token=x")).toBe("(unparsable URL)");
  });
});
