import { json } from "./api.js";
import { ThroughputChart } from "./chart.js";
import { duration, num } from "./format.js";
import { usePoll } from "./poll.js";
import type { Gpu, Health, Session, ThroughputPoint } from "./types.js";

const gpuCell = (gpus: Gpu[], pick: (g: Gpu) => string) => (gpus.length === 0 ? "–" : gpus.map(pick).join(", "));

/** Agents with their GPUs, the queue, and (for a tenant) the last hour's throughput. */
export function Overview({ session }: { session: Session }) {
  const health = usePoll(() => json<Health>("/health"), 2000, []);
  const tenant = session.principal === "tenant";
  const series = usePoll(() => (tenant ? json<{ data: ThroughputPoint[] }>("/v1/throughput?minutes=60") : Promise.resolve({ data: [] })), 10_000, [tenant]);
  const h = health.data;
  const workers = h?.workers ?? [];
  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">Overview</h1>
      {health.error && <p role="alert" class="error">{health.error}</p>}
      {h && (
        <p>
          Status: <strong class={`status status-${h.status}`}>{h.status}</strong>
          {h.reasons.length > 0 && <span> ({h.reasons.join("; ")})</span>}
        </p>
      )}
      <h2>Queue</h2>
      <dl class="stats">
        <div>
          <dt>Active batches</dt>
          <dd data-testid="queue-depth">{num(h?.queue?.active_jobs)}</dd>
        </div>
        <div>
          <dt>Queued requests</dt>
          <dd>{num(h?.queue?.total_queued_requests)}</dd>
        </div>
        <div>
          <dt>Oldest waiting batch</dt>
          <dd>{h?.queue?.oldest_waiting_seconds == null ? "none waiting" : duration(h.queue.oldest_waiting_seconds)}</dd>
        </div>
      </dl>
      <h2>Agents</h2>
      {h && !h.workers && <p>Sign in to see the agents.</p>}
      <table>
        <caption class="sr-only">Agents and their GPUs</caption>
        <thead>
          <tr>
            <th scope="col">Agent</th>
            <th scope="col">Model</th>
            <th scope="col">Status</th>
            <th scope="col">Heartbeat</th>
            <th scope="col">In flight</th>
            <th scope="col">Concurrency limit</th>
            <th scope="col">GPU temp.</th>
            <th scope="col">GPU memory</th>
            <th scope="col">GPU util.</th>
          </tr>
        </thead>
        <tbody>
          {workers.length === 0 && (
            <tr>
              <td colSpan={9}>No live agent.</td>
            </tr>
          )}
          {workers.map((w) => {
            const gpus = h!.gpu.filter((g) => g.agent_id === w.id);
            return (
              <tr key={w.id} data-agent={w.id}>
                <td>
                  <code>{w.id}</code>
                  <br />
                  <small>{w.host}</small>
                </td>
                <td>{w.models.join(", ")}</td>
                <td>{w.status + (w.paused_reason ? ` (${w.paused_reason})` : "")}</td>
                <td>{duration(w.heartbeat_age_seconds)} ago</td>
                <td>{num(w.in_flight)}</td>
                <td>{num(w.concurrency_limit)}</td>
                <td>{gpuCell(gpus, (g) => (g.temperature_c === null ? "–" : `${g.temperature_c} °C`))}</td>
                <td>{gpuCell(gpus, (g) => (g.memory_used_mib === null ? "–" : `${num(g.memory_used_mib)} / ${num(g.memory_total_mib)} MiB (${num(g.memory_percent, 1)} %)`))}</td>
                <td>{gpuCell(gpus, (g) => (g.utilization_percent === null ? "–" : `${g.utilization_percent} %`))}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {tenant && (
        <>
          <h2>Throughput, last hour</h2>
          {series.error && <p role="alert" class="error">{series.error}</p>}
          <ThroughputChart points={series.data?.data ?? []} />
        </>
      )}
    </section>
  );
}
