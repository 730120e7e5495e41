// The image's health probe: `node healthcheck.mjs [url]` exits 0 when the URL answers 2xx within
// the time below, 1 otherwise, printing why (Docker keeps the output in the container's health
// log). Plain Node without dependencies, because the runtime image holds nothing but the bundles.
// Without a URL it probes the API's /readyz on API_PORT.
const TIMEOUT_MS = 4000;

const url = process.argv[2] ?? `http://127.0.0.1:${process.env.API_PORT || "4080"}/readyz`;
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  await res.body?.cancel();
  console.log(`${url}: ${res.status}`);
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  console.log(`${url}: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
