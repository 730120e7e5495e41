import { loadConfig } from "@barge/core";
import { effectiveEnv } from "./k8s-checks.js";
import { podSpecs, type Container, type Manifest } from "./k8s-objects.js";

// How the manifests are wired to the processes: probes to the endpoints they serve, ports to the
// settings that open them, KEDA's query to the API's metrics, monitoring to Prometheus' job names.

/** One HTTP probe of a container, its port resolved to a number. */
export interface Probe {
  owner: string;
  container: string;
  kind: "startupProbe" | "readinessProbe" | "livenessProbe";
  path: string;
  port: number | undefined;
}

const PROBES = ["startupProbe", "readinessProbe", "livenessProbe"] as const;

/** A container's HTTP probes, or none; a named port resolves through the container's ports. */
function probesOf(owner: string, c: Container): Probe[] {
  return PROBES.filter((k) => c[k]?.httpGet).map((kind) => {
    const port = c[kind].httpGet.port;
    const number = typeof port === "number" ? port : (c.ports ?? []).find((p: { name?: string }) => p.name === port)?.containerPort;
    return { owner, container: c.name, kind, path: c[kind].httpGet.path, port: number };
  });
}

/** The containers of one role: `api`, `agent` (by the bundle they run) or `vllm` (by image). */
export function containersOf(ms: Manifest[], role: "api" | "agent" | "vllm"): { owner: string; c: Container }[] {
  return podSpecs(ms).flatMap((p) =>
    p.containers.filter((c) => (role === "vllm" ? String(c.image).startsWith("vllm/") : c.command?.[1] === `dist/${role}.mjs`)).map((c) => ({ owner: p.owner, c })),
  );
}

/** Every HTTP probe of a role's containers. */
export function probes(ms: Manifest[], role: "api" | "agent" | "vllm"): Probe[] {
  return containersOf(ms, role).flatMap(({ owner, c }) => probesOf(owner, c));
}

/**
 * Probes reach the port the process listens on, on the pod's address (the kubelet probes the pod
 * IP, so a loopback bind fails them); the agent reaches its vLLM on loopback at vLLM's port.
 */
export function portProblems(ms: Manifest[]): string[] {
  const problems: string[] = [];
  const check = (role: "api" | "agent", port: (c: ReturnType<typeof loadConfig>) => number, host: (c: ReturnType<typeof loadConfig>) => string) => {
    for (const { owner, c } of containersOf(ms, role)) {
      const config = loadConfig(effectiveEnv(ms, c));
      const who = `${owner} container ${c.name}`;
      if (host(config).startsWith("127.")) problems.push(`${who}: listens on ${host(config)}, out of the kubelet's and Prometheus' reach`);
      const ps = probesOf(owner, c);
      if (ps.length === 0) problems.push(`${who}: has no HTTP probe`);
      for (const p of ps) if (p.port !== port(config)) problems.push(`${who}: ${p.kind} on port ${p.port}, but it listens on ${port(config)}`);
    }
  };
  check("api", (c) => c.API_PORT, (c) => c.API_HOST);
  check("agent", (c) => c.AGENT_METRICS_PORT, (c) => c.AGENT_METRICS_HOST);
  for (const p of podSpecs(ms)) {
    const vllm = p.containers.find((c) => String(c.image).startsWith("vllm/"));
    const agent = p.containers.find((c) => c.command?.[1] === "dist/agent.mjs");
    if (!vllm || !agent) continue;
    const args: string[] = vllm.args ?? [];
    const served = Number(args[args.indexOf("--port") + 1] ?? 8000);
    const url = new URL(loadConfig(effectiveEnv(ms, agent)).VLLM_URL ?? "http://unset");
    if (url.hostname !== "127.0.0.1" || Number(url.port) !== served) problems.push(`${p.owner}: VLLM_URL ${url.href} is not vLLM's port ${served} on loopback`);
    const ready = probesOf(p.owner, vllm).find((x) => x.kind === "readinessProbe");
    if (!ready || ready.path !== "/health" || ready.port !== served) problems.push(`${p.owner}: vLLM needs a readiness probe on /health at port ${served}`);
  }
  return problems;
}

const PROMQL_WORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless"]);

/** The metric names a PromQL expression reads (label matchers, functions and keywords left out). */
export function metricNames(query: string): string[] {
  const bare = query.replace(/\{[^}]*\}|\[[^\]]*\]|"[^"]*"|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  return [...bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*(?!\s*[(\w])/g)].map((m) => m[0]).filter((w) => !PROMQL_WORDS.has(w));
}

/** The job label a ServiceMonitor endpoint gives its targets: its relabeling, else the Service's name. */
function jobsOf(ms: Manifest[]): { monitor: string; port: string; job: string }[] {
  return ms
    .filter((m) => m.doc.kind === "ServiceMonitor")
    .flatMap((m) =>
      m.doc.spec.endpoints.map((e: { port: string; relabelings?: { targetLabel: string; replacement?: string }[] }) => ({
        monitor: m.doc.metadata.name as string,
        port: e.port,
        job: e.relabelings?.find((r) => r.targetLabel === "job")?.replacement ?? (m.doc.metadata.name as string),
      })),
    );
}

/** The ServiceMonitors' jobs are infra/prometheus/prometheus.yml's, so its rules and dashboards apply unchanged. */
export function jobProblems(ms: Manifest[], prometheusJobs: string[]): string[] {
  const jobs = jobsOf(ms).map((j) => j.job).sort();
  const want = [...prometheusJobs].sort();
  return JSON.stringify(jobs) === JSON.stringify(want) ? [] : [`ServiceMonitors give the jobs ${jobs.join(", ")}; prometheus.yml has ${want.join(", ")}`];
}

/**
 * KEDA's Prometheus queries read only metrics the API exposes, from the API's job, and ask for at
 * least one whole chunk per agent (an agent beyond the chunk count would only idle on its GPU).
 */
export function scalingProblems(ms: Manifest[], exposed: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  const apiJob = jobsOf(ms).find((j) => j.port === "http")?.job;
  const [agent] = containersOf(ms, "agent");
  const chunk = agent ? loadConfig(effectiveEnv(ms, agent.c)).CHUNK_SIZE : undefined;
  for (const m of ms.filter((x) => x.doc.kind === "ScaledObject")) {
    const who = `ScaledObject ${m.doc.metadata.name}`;
    const prom = m.doc.spec.triggers.filter((t: { type: string }) => t.type === "prometheus");
    if (prom.length === 0) problems.push(`${who}: has no prometheus trigger`);
    for (const t of prom) {
      const query: string = t.metadata.query;
      for (const name of metricNames(query)) if (!exposed.has(name)) problems.push(`${who}: ${name} is no metric of the API's /metrics`);
      const job = /job\s*=\s*"([^"]+)"/.exec(query)?.[1];
      if (job !== apiJob) problems.push(`${who}: reads job ${job ?? "(any)"}, not the API's job ${apiJob}`);
      if (chunk === undefined || !(Number(t.metadata.threshold) >= chunk)) problems.push(`${who}: threshold ${t.metadata.threshold} is under one chunk (CHUNK_SIZE ${chunk})`);
    }
  }
  return problems;
}
