import { useState } from "preact/hooks";
import { json } from "./api.js";
import { eta, num } from "./format.js";
import { usePoll } from "./poll.js";
import { BatchProgress } from "./progress.js";
import { STATUSES, type Batch, type List } from "./types.js";

/** The tenant's batches, newest first, refreshed every 2 s with one list call, filterable by status. */
export function Batches() {
  const [status, setStatus] = useState("");
  const list = usePoll(() => json<List<Batch>>(`/v1/batches?limit=100${status ? `&status=${status}` : ""}`), 2000, [status]);
  const rows = list.data?.data ?? [];
  return (
    <section aria-labelledby="batches-title">
      <h1 id="batches-title">Batches</h1>
      <label>
        Status{" "}
        <select value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
          <option value="">all</option>
          {STATUSES.map((s) => (
            <option value={s}>{s}</option>
          ))}
        </select>
      </label>
      {list.error && <p role="alert" class="error">{list.error}</p>}
      <table>
        <caption class="sr-only">Batches</caption>
        <thead>
          <tr>
            <th scope="col">Batch</th>
            <th scope="col">Status</th>
            <th scope="col">Progress</th>
            <th scope="col">Completed</th>
            <th scope="col">Failed</th>
            <th scope="col">Tokens/s</th>
            <th scope="col">ETA</th>
          </tr>
        </thead>
        <tbody>
          {list.data && rows.length === 0 && (
            <tr>
              <td colSpan={7}>No batches{status ? ` with status ${status}` : ""}.</td>
            </tr>
          )}
          {rows.map((b) => (
            <tr key={b.id} data-batch={b.id}>
              <td>
                <a href={`#/batches/${b.id}`}>
                  <code>{b.id}</code>
                </a>
              </td>
              <td class="batch-status">{b.paused ? "paused" : b.status}</td>
              <td>
                <BatchProgress b={b} />
              </td>
              <td>{num(b.request_counts.completed)}</td>
              <td>{num(b.request_counts.failed)}</td>
              <td>{num(b.throughput_tokens_per_sec, 1)}</td>
              <td>{eta(b.estimated_completion)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data?.has_more && <p>Showing the newest 100.</p>}
    </section>
  );
}
