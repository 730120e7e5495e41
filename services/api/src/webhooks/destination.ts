import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { BlockList, isIP, type LookupFunction } from "node:net";

/**
 * Where a batch's own webhook may point. Anyone with an API key can set `webhook_url`, and the API
 * then POSTs from inside the deployment's network, so by default such a URL may not reach a
 * loopback, private, link-local, shared or reserved address (the metadata service at
 * 169.254.169.254, the database, the engine). The operator's WEBHOOK_URLS are trusted as they are,
 * and WEBHOOK_ALLOW_PRIVATE lifts the rule for deployments whose receivers live inside.
 */
const blocked = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  blocked.addSubnet(net, prefix, "ipv4");
}
// IPv6 ranges that are internal themselves, or that carry an IPv4 address a gateway or the host's
// own stack may turn into a connection to it (IPv4-compatible, NAT64, SIIT, 6to4, Teredo), so an
// internal IPv4 host cannot be reached through them. IPv4-mapped addresses (::ffff:0:0/96) are
// matched by BlockList against the IPv4 ranges above, so a mapped public address stays allowed.
for (const [net, prefix] of [
  ["::", 96],
  ["64:ff9b::", 96],
  ["64:ff9b:1::", 48],
  ["::ffff:0:0:0", 96],
  ["2001::", 32],
  ["2002::", 16],
  ["fc00::", 7],
  ["fe80::", 10],
  ["fec0::", 10],
  ["ff00::", 8],
] as const) {
  blocked.addSubnet(net, prefix, "ipv6");
}

/** Whether `address` (an IP literal, in any spelling) is one a batch's webhook may not reach. */
export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, "ipv4");
  if (family === 6) return blocked.check(address, "ipv6");
  return true;
}

/** The host of `url` as an address or name: brackets off an IPv6 literal, no trailing dot, lower case. */
function hostOf(url: string): string {
  return new URL(url).hostname.replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "").toLowerCase();
}

/** Why `url`'s host is an internal IP literal, or null; names are checked as they resolve (`publicOnlyLookup`). */
export function internalAddressIn(url: string): string | null {
  const host = hostOf(url);
  return isIP(host) !== 0 && isInternalAddress(host) ? `${host} is an internal address` : null;
}

/** Why `url` may not be a batch's webhook as it is written (an internal IP, or `localhost`), or null. */
export function internalDestination(url: string): string | null {
  const host = hostOf(url);
  if (host === "localhost" || host.endsWith(".localhost")) return `'${host}' is this host`;
  return internalAddressIn(url);
}

/** The error a connection refused by `publicOnlyLookup` fails with. */
export class InternalDestination extends Error {
  override readonly name = "InternalDestination";
}

/**
 * `dns.lookup` for outgoing webhook connections that fails when a name resolves to an internal
 * address. It runs when the socket connects, so a name cannot pass a check and then resolve
 * elsewhere for the connection itself.
 */
export const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
    if (err) return callback(err, "", 0);
    const internal = addresses.find((a) => isInternalAddress(a.address));
    if (internal) return callback(new InternalDestination(`${hostname} resolves to ${internal.address}, an internal address`), "", 0);
    if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
    const first = addresses[0]!;
    callback(null, first.address, first.family);
  });
};

/** `url` without its userinfo, query and fragment, which may carry a token: what logs may show of it. */
export function redactUrl(url: string): string {
  if (!URL.canParse(url)) return "(unparsable URL)";
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}
