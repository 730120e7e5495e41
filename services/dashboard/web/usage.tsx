import { json } from "./api.js";
import { num } from "./format.js";
import { usePoll } from "./poll.js";
import type { UsageResult } from "./types.js";

interface UsagePage {
  data: { start_time: number; results: UsageResult[] }[];
}

/** The admin's view: each tenant's committed usage over the last 7 UTC days. */
export function Usage() {
  const page = usePoll(() => json<UsagePage>(`/v1/admin/usage?start_time=${Math.floor(Date.now() / 1000) - 6 * 86400}`), 10_000, []);
  const totals = new Map<string, { requests: number; failed: number; input: number; output: number }>();
  for (const day of page.data?.data ?? []) {
    for (const r of day.results) {
      const t = totals.get(r.project_id) ?? { requests: 0, failed: 0, input: 0, output: 0 };
      totals.set(r.project_id, { requests: t.requests + r.num_model_requests, failed: t.failed + r.failed_requests, input: t.input + r.input_tokens, output: t.output + r.output_tokens });
    }
  }
  return (
    <section aria-labelledby="usage-title">
      <h1 id="usage-title">Usage by tenant, last 7 days</h1>
      {page.error && <p role="alert" class="error">{page.error}</p>}
      <table>
        <caption class="sr-only">Usage by tenant</caption>
        <thead>
          <tr>
            <th scope="col">Tenant</th>
            <th scope="col">Requests</th>
            <th scope="col">Failed</th>
            <th scope="col">Input tokens</th>
            <th scope="col">Output tokens</th>
          </tr>
        </thead>
        <tbody>
          {page.data && totals.size === 0 && (
            <tr>
              <td colSpan={5}>No usage yet.</td>
            </tr>
          )}
          {[...totals].map(([tenant, t]) => (
            <tr key={tenant} data-tenant={tenant}>
              <td>{tenant}</td>
              <td>{num(t.requests)}</td>
              <td>{num(t.failed)}</td>
              <td>{num(t.input)}</td>
              <td>{num(t.output)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
