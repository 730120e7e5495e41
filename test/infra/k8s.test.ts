import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { configSchema } from "@barge/core";
import { freePort } from "@barge/devstack";
import { SERVICE_ENTRIES } from "../../infra/build.js";
import { startBareApi } from "../support/api-harness.js";
import { prometheusTools, startPrometheus } from "../support/prometheus.js";
import { chatLine, seedBatch, waitFor } from "../support/seed.js";
import { suiteResources } from "../support/suite-resources.js";
import { envProblems, imageProblems, refProblems, resourceProblems, securityProblems, selectorProblems, shutdownProblems, targetProblems, type ImageFacts } from "./k8s-checks.js";
import { loadManifests, schemaProblems, type Manifest } from "./k8s-objects.js";
import { jobProblems, metricNames, portProblems, probes, scalingProblems } from "./k8s-wiring.js";

// infra/k8s/ cannot be applied here (no cluster): every document is validated against the
// Kubernetes API's schemas and KEDA's and the Prometheus Operator's CRD schemas (kubernetes-models),
// its cross-references are followed, and its probes and KEDA query are run against the real API,
// agent and Prometheus. Each rule is also shown failing on a broken copy of the manifests.

const manifests = loadManifests("infra/k8s");
const composeApi = (parse(readFileSync("docker-compose.yml", "utf8")) as { services: Record<string, { image?: string }> }).services.api;
const facts: ImageFacts = {
  // docker-compose.yml builds the image without naming it, unless it names one (`${VAR:-default}` read as its default).
  repo: composeApi?.image?.replace(/\$\{[^:}]+:-([^}]*)\}/g, "$1").replace(/:[^:/]+$/, "") ?? "barge",
  version: (JSON.parse(readFileSync("services/api/package.json", "utf8")) as { version: string }).version,
  bundles: Object.keys(SERVICE_ENTRIES),
};
const configKeys = new Set(Object.keys(configSchema.shape));
/** Room past AGENT_SHUTDOWN_GRACE_MS for the agent to commit, release its chunks and for vLLM to stop. */
const SHUTDOWN_MARGIN_MS = 10_000;
const prometheusJobs = (parse(readFileSync("infra/prometheus/prometheus.yml", "utf8")) as { scrape_configs: { job_name: string }[] }).scrape_configs.map((s) => s.job_name);
const tools = prometheusTools();

/** A deep copy of the manifests with `change` applied to the document of `kind` named `name`. */
function broken(kind: string, name: string, change: (doc: Manifest["doc"]) => void): Manifest[] {
  const copy = structuredClone(manifests);
  const m = copy.find((x) => x.doc.kind === kind && x.doc.metadata.name === name);
  if (!m) throw new Error(`no ${kind} ${name}`);
  change(m.doc);
  return copy;
}
const agentSpec = (doc: Manifest["doc"]) => doc.spec.template.spec;

describe("infra/k8s: the manifests", () => {
  it("are the objects the README's Kubernetes section lists, each valid against its schema", () => {
    expect(manifests.map((m) => `${m.file} ${m.doc.kind}/${m.doc.metadata.name}`)).toEqual([
      "00-namespace.yaml Namespace/barge",
      "10-config.yaml ConfigMap/barge-config",
      "20-migrate-job.yaml Job/barge-migrate",
      "30-api.yaml Deployment/barge-api",
      "30-api.yaml Service/barge-api",
      "30-api.yaml HorizontalPodAutoscaler/barge-api",
      "30-api.yaml PodDisruptionBudget/barge-api",
      "40-agent.yaml Deployment/barge-agent",
      "40-agent.yaml Service/barge-agent",
      "40-agent.yaml NetworkPolicy/barge-agent",
      "40-agent.yaml PodDisruptionBudget/barge-agent",
      "50-monitoring.yaml ServiceMonitor/barge-api",
      "50-monitoring.yaml ServiceMonitor/barge-agent",
      "60-keda.yaml ScaledObject/barge-agent",
      "secret.example.yaml Secret/barge-secrets",
    ]);
    expect(schemaProblems(manifests)).toEqual([]);
    const readme = readFileSync("README.md", "utf8");
    const section = readme.slice(readme.indexOf("\n## Kubernetes\n"), readme.indexOf("\n## ", readme.indexOf("\n## Kubernetes\n") + 1));
    expect([...new Set(manifests.map((m) => m.file))].filter((f) => !section.includes(`infra/k8s/${f}`))).toEqual([]);
  });

  it("fail the schemas when a field has the wrong type, a required field is missing, a CRD's field has the wrong shape", () => {
    const problems = [
      ...schemaProblems(broken("Deployment", "barge-api", (d) => (d.spec.template.spec.containers[0].ports[0].containerPort = "4080"))),
      ...schemaProblems(broken("Service", "barge-api", (d) => delete d.spec.ports[0].port)),
      ...schemaProblems(broken("ScaledObject", "barge-agent", (d) => (d.spec.triggers[0].metadata = "query"))),
      ...schemaProblems(broken("ServiceMonitor", "barge-api", (d) => (d.spec.endpoints[0].authorization.credentials = "METRICS_TOKEN"))),
      ...schemaProblems(broken("Job", "barge-migrate", (d) => (d.apiVersion = "batch/v2"))),
    ];
    expect(problems).toEqual([
      "30-api.yaml: Deployment barge-api: data/spec/template/spec/containers/0/ports/0/containerPort must be integer",
      "30-api.yaml: Service barge-api: data/spec/ports/0 must have required property port",
      "60-keda.yaml: ScaledObject barge-agent: data/spec/triggers/0/metadata must be object",
      "50-monitoring.yaml: ServiceMonitor barge-api: data/spec/endpoints/0/authorization/credentials must be object",
      "20-migrate-job.yaml: Job barge-migrate: no schema for batch/v2 Job",
    ]);
  });

  it("select what exists: Services, PDBs, the NetworkPolicy and ServiceMonitors, by labels and port names", () => {
    expect(selectorProblems(manifests)).toEqual([]);
    expect(selectorProblems(broken("Service", "barge-api", (d) => (d.spec.selector["app.kubernetes.io/component"] = "apii")))).toEqual(["Service barge-api: selects no pod template"]);
    expect(selectorProblems(broken("Service", "barge-agent", (d) => (d.spec.ports[1].targetPort = "vllm")))).toEqual(["Service barge-agent: targetPort vllm is no container port of Deployment barge-agent"]);
    expect(selectorProblems(broken("PodDisruptionBudget", "barge-api", (d) => (d.spec.selector.matchLabels = { app: "api" })))).toEqual(["PodDisruptionBudget barge-api: selects no pod template"]);
    expect(selectorProblems(broken("ServiceMonitor", "barge-agent", (d) => (d.spec.endpoints[0].port = "agent-metrics")))).toEqual(["ServiceMonitor barge-agent: endpoint port agent-metrics is on no selected Service"]);
  });

  it("scale targets that exist, and KEDA alone scales the agents", () => {
    expect(targetProblems(manifests)).toEqual([]);
    expect(targetProblems(broken("HorizontalPodAutoscaler", "barge-api", (d) => (d.spec.scaleTargetRef.name = "api")))).toEqual(["HorizontalPodAutoscaler barge-api: targets Deployment api, which is not here"]);
    expect(targetProblems(broken("Deployment", "barge-agent", (d) => (d.spec.replicas = 1)))).toEqual(["ScaledObject barge-agent: target barge-agent sets spec.replicas, which every apply would reset under KEDA"]);
    expect(targetProblems(broken("HorizontalPodAutoscaler", "barge-api", (d) => (d.spec.scaleTargetRef.name = "barge-agent")))).toEqual(["ScaledObject barge-agent: target barge-agent is also scaled by HorizontalPodAutoscaler barge-api"]);
  });

  it("refer to ConfigMaps, Secrets and keys that exist (the optional Hugging Face token aside)", () => {
    expect(refProblems(manifests)).toEqual([]);
    expect(refProblems(broken("Job", "barge-migrate", (d) => (d.spec.template.spec.containers[0].envFrom[1].secretRef.name = "barge-secret")))).toEqual(["Job barge-migrate container migrate: Secret barge-secret is not here"]);
    expect(refProblems(broken("Secret", "barge-secrets", (d) => delete d.stringData.METRICS_TOKEN))).toEqual(["ServiceMonitor barge-api: Secret barge-secrets has no key METRICS_TOKEN"]);
    expect(refProblems(broken("Deployment", "barge-agent", (d) => (agentSpec(d).initContainers[0].env[2].valueFrom.secretKeyRef.optional = false)))).toEqual(["Deployment barge-agent container vllm: Secret barge-hf is not here"]);
  });

  it("give Barge's containers only settings config.ts knows, with values its schema accepts", () => {
    expect(envProblems(manifests, facts, configKeys)).toEqual([]);
    expect(envProblems(broken("ConfigMap", "barge-config", (d) => (d.data.AGENT_SHUTDOWN_GRACE = "30000")), facts, configKeys)).toEqual(
      ["Job barge-migrate", "Deployment barge-api", "Deployment barge-agent"].map((o) => `${o} container ${o.endsWith("migrate") ? "migrate" : o.endsWith("api") ? "api" : "agent"}: AGENT_SHUTDOWN_GRACE is no setting of config.ts`),
    );
    expect(envProblems(broken("Deployment", "barge-agent", (d) => (agentSpec(d).containers[0].env[0].value = "127.0.0.1:8000")), facts, configKeys)).toEqual([
      "Deployment barge-agent container agent: invalid configuration: VLLM_URL: Invalid URL",
    ]);
  });

  it("pin every image; Barge's are the project image at its version, running a bundle of infra/build.ts", () => {
    expect(imageProblems(manifests, facts)).toEqual([]);
    expect(facts.bundles).toContain("migrate");
    expect(imageProblems(broken("Deployment", "barge-agent", (d) => (agentSpec(d).initContainers[0].image = "vllm/vllm-openai:latest")), facts)).toEqual([
      "Deployment barge-agent container vllm: image vllm/vllm-openai:latest is not pinned to a version",
      "Deployment barge-agent container vllm: vLLM image vllm/vllm-openai:latest is not a release tag",
    ]);
    expect(imageProblems(broken("Job", "barge-migrate", (d) => (d.spec.template.spec.containers[0].command = ["node", "dist/cli.mjs", "migrate"])), facts)).toEqual([
      'Job barge-migrate container migrate: command ["node","dist/cli.mjs","migrate"] runs no bundle of infra/build.ts',
    ]);
    expect(imageProblems(broken("Deployment", "barge-api", (d) => (d.spec.template.spec.containers[0].image = `${facts.repo}:0.0.9`)), facts)).toEqual([
      `Deployment barge-api container api: image ${facts.repo}:0.0.9 is not ${facts.repo}:${facts.version}`,
    ]);
  });

  it("run nothing as root, escalate nothing, keep no capabilities; Barge's containers on a read-only root", () => {
    expect(securityProblems(manifests, facts)).toEqual([]);
    expect(securityProblems(broken("Deployment", "barge-agent", (d) => (agentSpec(d).initContainers[0].securityContext.runAsUser = 0)), facts)).toEqual(["Deployment barge-agent container vllm: may run as root"]);
    expect(securityProblems(broken("Job", "barge-migrate", (d) => delete d.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem), facts)).toEqual(["Job barge-migrate container migrate: root filesystem is writable"]);
    expect(securityProblems(broken("Deployment", "barge-api", (d) => (d.spec.template.spec.containers[0].securityContext = {})), facts)).toEqual([
      "Deployment barge-api container api: allows privilege escalation",
      "Deployment barge-api container api: keeps its capabilities",
      "Deployment barge-api container api: root filesystem is writable",
    ]);
  });

  it("request CPU and memory everywhere; each agent pod has one GPU, in its vLLM sidecar", () => {
    expect(resourceProblems(manifests)).toEqual([]);
    expect(resourceProblems(broken("Deployment", "barge-api", (d) => delete d.spec.template.spec.containers[0].resources.limits))).toEqual(["Deployment barge-api container api: needs CPU and memory requests and a memory limit"]);
    expect(resourceProblems(broken("Deployment", "barge-agent", (d) => (agentSpec(d).initContainers[0].resources.limits["nvidia.com/gpu"] = "2")))).toEqual([
      "Deployment barge-agent container vllm: GPU request and limit differ",
      "Deployment barge-agent: wants one container with one GPU, has 1",
    ]);
    expect(resourceProblems(broken("Deployment", "barge-agent", (d) => delete agentSpec(d).initContainers[0].restartPolicy))).toEqual([
      "Deployment barge-agent: the GPU container vllm is not a native sidecar (init container, restartPolicy Always)",
    ]);
  });

  it("let an agent pod outlive AGENT_SHUTDOWN_GRACE_MS (as the agent reads it) by the time to commit and release", () => {
    expect(shutdownProblems(manifests, facts, SHUTDOWN_MARGIN_MS)).toEqual([]);
    expect(shutdownProblems(broken("ConfigMap", "barge-config", (d) => (d.data.AGENT_SHUTDOWN_GRACE_MS = "55000")), facts, SHUTDOWN_MARGIN_MS)).toEqual([
      "Deployment barge-agent: terminationGracePeriodSeconds 60 leaves under 10 s past AGENT_SHUTDOWN_GRACE_MS 55000",
    ]);
    // Unset, the agent's default applies, and the pod's default of 30 s is under it plus the margin.
    expect(shutdownProblems(broken("Deployment", "barge-agent", (d) => delete agentSpec(d).terminationGracePeriodSeconds), facts, SHUTDOWN_MARGIN_MS)).toEqual([
      "Deployment barge-agent: terminationGracePeriodSeconds 30 leaves under 10 s past AGENT_SHUTDOWN_GRACE_MS 30000",
    ]);
  });

  it("probe the ports the processes listen on, on the pod's address; the agent reaches vLLM on loopback", () => {
    expect(portProblems(manifests)).toEqual([]);
    expect(portProblems(broken("Deployment", "barge-api", (d) => (d.spec.template.spec.containers[0].env[1].value = "8080")))).toEqual(
      ["startupProbe", "readinessProbe", "livenessProbe"].map((k) => `Deployment barge-api container api: ${k} on port 4080, but it listens on 8080`),
    );
    expect(portProblems(broken("Deployment", "barge-agent", (d) => (agentSpec(d).containers[0].env[1].value = "127.0.0.1")))).toEqual([
      "Deployment barge-agent container agent: listens on 127.0.0.1, out of the kubelet's and Prometheus' reach",
    ]);
    expect(portProblems(broken("Deployment", "barge-agent", (d) => (agentSpec(d).initContainers[0].args[4] = "8001")))).toEqual([
      "Deployment barge-agent: VLLM_URL http://127.0.0.1:8000/ is not vLLM's port 8001 on loopback",
      "Deployment barge-agent: vLLM needs a readiness probe on /health at port 8001",
    ]);
  });

  it("monitor under infra/prometheus/prometheus.yml's job names", () => {
    expect(jobProblems(manifests, prometheusJobs)).toEqual([]);
    expect(jobProblems(broken("ServiceMonitor", "barge-agent", (d) => delete d.spec.endpoints[1].relabelings), prometheusJobs)).toEqual([
      "ServiceMonitors give the jobs barge-agent, barge-agent, barge-api; prometheus.yml has barge-agent, barge-api, vllm",
    ]);
  });

  it("read the metric names of a PromQL query, functions, labels and ranges left out", () => {
    expect(metricNames('max(barge_queued_requests{job="barge-api"})')).toEqual(["barge_queued_requests"]);
    expect(metricNames('sum by (model) (rate(barge_requests_total{outcome="failed"}[5m])) / on (model) barge_live_agents')).toEqual(["barge_requests_total", "barge_live_agents"]);
  });
});

describe("infra/k8s: against the real processes", () => {
  const suite = suiteResources();

  it("the API's probe paths answer 200 on a real API; /healthz, which it does not serve, would not", async () => {
    const paths = probes(manifests, "api").map((p) => p.path);
    expect(paths).toEqual(["/livez", "/readyz", "/livez"]);
    const t = await startBareApi();
    suite.cleanup(() => t.close());
    const statuses = await Promise.all([...new Set(paths), "/healthz"].map(async (p) => [p, (await fetch(t.url + p)).status]));
    expect(statuses).toEqual([["/livez", 200], ["/readyz", 200], ["/healthz", 404]]);
  });

  it("the agent's probe paths answer on a real agent's metrics port; vLLM's on engine-sim, a stand-in for vLLM", async () => {
    const [agentProbe, vllmProbe] = [probes(manifests, "agent"), probes(manifests, "vllm")];
    expect(agentProbe.map((p) => `${p.kind} ${p.path} ${p.port}`)).toEqual(["startupProbe /readyz 9464", "readinessProbe /readyz 9464", "livenessProbe /livez 9464"]);
    expect(vllmProbe.map((p) => `${p.kind} ${p.path} ${p.port}`)).toEqual(["startupProbe /health 8000", "readinessProbe /health 8000", "livenessProbe /health 8000"]);
    // Fixed ports cannot be had in a test: the same paths on free ones.
    const port = await freePort();
    const ctx = await suite.context({ AGENT_METRICS_PORT: String(port) });
    const sim = await suite.sim({ models: ["barge-sim-1"] });
    await suite.agent(ctx, { engineUrl: sim.url, agentId: "k8s-probe" }).start();
    const agentPaths = [...new Set(agentProbe.map((p) => p.path))];
    expect(await Promise.all(agentPaths.map(async (p) => [p, (await fetch(`http://127.0.0.1:${port}${p}`)).status]))).toEqual([["/readyz", 200], ["/livez", 200]]);
    expect((await fetch(`${sim.url}${vllmProbe[0]!.path}`)).status).toBe(200);
  });

  it(`KEDA's query reads only the API's metrics${tools.missing ? ` (the Prometheus part skipped: ${tools.missing})` : "; in a real Prometheus scraping the API as the ServiceMonitor says, it reads the queued requests"}`, async () => {
    const secret = manifests.find((m) => m.doc.kind === "Secret")!.doc.stringData as Record<string, string>;
    const t = await startBareApi({ METRICS_TOKEN: secret.METRICS_TOKEN!, CHUNK_SIZE: "4" });
    suite.cleanup(() => t.close());
    const exposition = await (await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${secret.METRICS_TOKEN}` } })).text();
    expect(exposition).toContain("# TYPE barge_queued_requests gauge");
    const exposed = new Set([...exposition.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    expect(scalingProblems(manifests, exposed)).toEqual([]);
    expect(scalingProblems(broken("ScaledObject", "barge-agent", (d) => (d.spec.triggers[0].metadata.query = 'max(barge_queue_depth{job="barge-api"})')), exposed)).toEqual([
      "ScaledObject barge-agent: barge_queue_depth is no metric of the API's /metrics",
    ]);
    expect(scalingProblems(broken("ScaledObject", "barge-agent", (d) => (d.spec.triggers[0].metadata.threshold = "100")), exposed)).toEqual([
      "ScaledObject barge-agent: threshold 100 is under one chunk (CHUNK_SIZE 5000)",
    ]);

    await seedBatch(t.ctx, Array.from({ length: 10 }, (_, i) => chatLine(`q-${i}`, `queued ${i}`)));
    const api = manifests.find((m) => m.doc.kind === "ServiceMonitor" && m.doc.metadata.name === "barge-api")!.doc.spec.endpoints[0];
    const scrape = {
      global: { scrape_interval: "1s" },
      scrape_configs: [
        {
          job_name: api.relabelings[0].replacement,
          metrics_path: api.path,
          authorization: { type: api.authorization.type, credentials: secret[api.authorization.credentials.key] },
          static_configs: [{ targets: [new URL(t.url).host] }],
        },
      ],
    };
    if (tools.missing !== undefined) return;
    const prometheus = await startPrometheus(tools.prometheus, JSON.stringify(scrape), await freePort());
    suite.cleanup(() => prometheus.stop());
    const query = manifests.find((m) => m.doc.kind === "ScaledObject")!.doc.spec.triggers[0].metadata.query as string;
    const value = await waitFor("Prometheus to answer KEDA's query", async () => {
      const body = (await (await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(query)}`)).json()) as { data: { result: { value: [number, string] }[] } };
      return body.data.result[0]?.value[1];
    });
    expect(value).toBe("10");
  });
});
