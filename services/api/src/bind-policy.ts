import { isIP } from "node:net";
import type { ApiConfig } from "@barge/core";

/** Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost), reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (h === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || /^::ffff:127\./.test(h);
  return false;
}

/**
 * Why the API must not listen on `host`, if it must not: a non-loopback address with no key set
 * would serve every file and batch to whoever reaches the port. Stored tenant keys do not count:
 * the admin key that makes them may be gone, and with no key at all the API is open.
 */
export function bindRefusal(host: string, config: Pick<ApiConfig, "BARGE_API_KEY" | "BARGE_ADMIN_KEY" | "BARGE_TRUSTED_NETWORK">): string | undefined {
  if (isLoopbackHost(host) || config.BARGE_API_KEY || config.BARGE_ADMIN_KEY || config.BARGE_TRUSTED_NETWORK) return undefined;
  return `refusing to serve the API on ${host} without a key: set BARGE_API_KEY or BARGE_ADMIN_KEY, bind API_HOST=127.0.0.1, or set BARGE_TRUSTED_NETWORK=true if every client on that network is trusted`;
}
