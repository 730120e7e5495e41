import { loadConfig } from "@barge/core";
import { podSpecs, problemsOf, type Container, type K8sObject, type Manifest } from "./k8s-objects.js";

// The rules test/infra/k8s.test.ts holds infra/k8s/ to. Each returns the problems it finds, as
// sentences naming the object, so the suite can show each one failing on a broken copy too.


/** The project's own image, and the bundles it holds (infra/build.ts). */
export interface ImageFacts {
  repo: string;
  version: string;
  bundles: string[];
}

const isBarge = (image: unknown, facts: Pick<ImageFacts, "repo">) => typeof image === "string" && image.startsWith(`${facts.repo}:`);

/** Selectors select something, and the ports they name exist on what they select. */
export function selectorProblems(ms: Manifest[]): string[] {
  return problemsOf(ms, (m, find, say) => {
    const { kind, spec } = m.doc;
    const pods = (sel: Record<string, string> | undefined) => podSpecs(ms).filter((p) => p.namespace === m.doc.metadata.namespace && matches(sel, p.labels));
    if (kind === "Service") {
      const selected = pods(spec.selector);
      if (selected.length === 0) return say("selects no pod template");
      for (const port of spec.ports ?? []) {
        if (typeof port.targetPort !== "string") continue;
        for (const p of selected) if (!p.containers.some((c) => (c.ports ?? []).some((cp: { name?: string }) => cp.name === port.targetPort))) say(`targetPort ${port.targetPort} is no container port of ${p.owner}`);
      }
    }
    if (kind === "PodDisruptionBudget" || kind === "NetworkPolicy") {
      if (pods((kind === "NetworkPolicy" ? spec.podSelector : spec.selector)?.matchLabels).length === 0) say("selects no pod template");
    }
    if (kind === "ServiceMonitor") {
      const services = find("Service").filter((s) => s.doc.metadata.namespace === m.doc.metadata.namespace && matches(spec.selector.matchLabels, s.doc.metadata.labels));
      if (services.length === 0) return say("selects no Service");
      for (const e of spec.endpoints) {
        if (!services.some((s) => s.doc.spec.ports.some((p: { name?: string }) => p.name === e.port))) say(`endpoint port ${e.port} is on no selected Service`);
      }
    }
  });
}

function matches(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** HPA and ScaledObject targets exist; KEDA's target leaves its replica count to KEDA, and no second autoscaler fights it. */
export function targetProblems(ms: Manifest[]): string[] {
  return problemsOf(ms, (m, find, say) => {
    if (m.doc.kind !== "HorizontalPodAutoscaler" && m.doc.kind !== "ScaledObject") return;
    const ref = m.doc.spec.scaleTargetRef;
    const target = find(ref.kind ?? "Deployment").find((d) => d.doc.metadata.name === ref.name && d.doc.metadata.namespace === m.doc.metadata.namespace);
    if (!target) return say(`targets ${ref.kind ?? "Deployment"} ${ref.name}, which is not here`);
    if (m.doc.kind === "ScaledObject") {
      if (target.doc.spec.replicas !== undefined) say(`target ${ref.name} sets spec.replicas, which every apply would reset under KEDA`);
      for (const h of find("HorizontalPodAutoscaler")) if (h.doc.spec.scaleTargetRef.name === ref.name) say(`target ${ref.name} is also scaled by HorizontalPodAutoscaler ${h.doc.metadata.name}`);
    }
  });
}

/** The data of a ConfigMap or Secret (stringData and base64 data together). */
function dataOf(doc: K8sObject): Record<string, string> {
  const decoded = Object.fromEntries(Object.entries((doc.kind === "Secret" ? doc.data : undefined) ?? {}).map(([k, v]) => [k, Buffer.from(String(v), "base64").toString()]));
  return { ...(doc.kind === "Secret" ? decoded : doc.data), ...(doc.stringData ?? {}) };
}

/** Every ConfigMap and Secret a pod or ServiceMonitor names exists and holds the key it names (refs marked optional aside). */
export function refProblems(ms: Manifest[]): string[] {
  const problems: string[] = [];
  const lookup = (kind: "ConfigMap" | "Secret", name: string, key: string | undefined, optional: boolean, who: string) => {
    const found = ms.find((m) => m.doc.kind === kind && m.doc.metadata.name === name);
    if (!found) {
      if (!optional) problems.push(`${who}: ${kind} ${name} is not here`);
    } else if (key !== undefined && !(key in dataOf(found.doc)) && !optional) problems.push(`${who}: ${kind} ${name} has no key ${key}`);
  };
  for (const p of podSpecs(ms)) {
    for (const c of p.containers) {
      const who = `${p.owner} container ${c.name}`;
      for (const f of c.envFrom ?? []) {
        if (f.configMapRef) lookup("ConfigMap", f.configMapRef.name, undefined, f.configMapRef.optional === true, who);
        if (f.secretRef) lookup("Secret", f.secretRef.name, undefined, f.secretRef.optional === true, who);
      }
      for (const e of c.env ?? []) {
        const cm = e.valueFrom?.configMapKeyRef;
        const sk = e.valueFrom?.secretKeyRef;
        if (cm) lookup("ConfigMap", cm.name, cm.key, cm.optional === true, who);
        if (sk) lookup("Secret", sk.name, sk.key, sk.optional === true, who);
      }
    }
  }
  for (const m of ms.filter((x) => x.doc.kind === "ServiceMonitor")) {
    for (const e of m.doc.spec.endpoints) {
      const cred = e.authorization?.credentials;
      if (cred) lookup("Secret", cred.name, cred.key, false, `ServiceMonitor ${m.doc.metadata.name}`);
    }
  }
  return problems;
}

/** A container's env as the process sees it: its envFrom sources, then its own env (secret and ConfigMap keys resolved). */
export function effectiveEnv(ms: Manifest[], c: Container): Record<string, string> {
  const source = (kind: string, name: string) => ms.find((m) => m.doc.kind === kind && m.doc.metadata.name === name)?.doc;
  const env: Record<string, string> = {};
  for (const f of c.envFrom ?? []) {
    const doc = f.configMapRef ? source("ConfigMap", f.configMapRef.name) : source("Secret", f.secretRef.name);
    if (doc) Object.assign(env, dataOf(doc));
  }
  for (const e of c.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
    const doc = ref && source(e.valueFrom.secretKeyRef ? "Secret" : "ConfigMap", ref.name);
    const value = e.value ?? (doc ? dataOf(doc)[ref.key] : undefined);
    if (value !== undefined) env[e.name] = value;
  }
  return env;
}

/** Barge's containers name only settings config.ts knows, and what they get parses as config. */
export function envProblems(ms: Manifest[], facts: Pick<ImageFacts, "repo">, configKeys: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  for (const p of podSpecs(ms)) {
    for (const c of p.containers.filter((x) => isBarge(x.image, facts))) {
      const env = effectiveEnv(ms, c);
      for (const name of Object.keys(env)) if (!configKeys.has(name)) problems.push(`${p.owner} container ${c.name}: ${name} is no setting of config.ts`);
      try {
        loadConfig(env);
      } catch (err) {
        problems.push(`${p.owner} container ${c.name}: ${(err as Error).message.replace(/\n\s*/g, " ")}`);
      }
    }
  }
  return problems;
}

/** Images are pinned; Barge's are the project image at its version, running bundles the image holds; vLLM's tag is a release. */
export function imageProblems(ms: Manifest[], facts: ImageFacts): string[] {
  const problems: string[] = [];
  for (const p of podSpecs(ms)) {
    for (const c of p.containers) {
      const who = `${p.owner} container ${c.name}`;
      const tag = /:([^:/@]+)$/.exec(c.image)?.[1];
      if (!tag || tag === "latest") problems.push(`${who}: image ${c.image} is not pinned to a version`);
      if (isBarge(c.image, facts)) {
        if (c.image !== `${facts.repo}:${facts.version}`) problems.push(`${who}: image ${c.image} is not ${facts.repo}:${facts.version}`);
        const bundle = /^dist\/(.+)\.mjs$/.exec(c.command?.[1] ?? "")?.[1];
        if (c.command?.[0] !== "node" || !bundle || !facts.bundles.includes(bundle)) problems.push(`${who}: command ${JSON.stringify(c.command)} runs no bundle of infra/build.ts`);
      } else if (c.image.startsWith("vllm/") && !/^v\d+\.\d+\.\d+$/.test(tag ?? "")) problems.push(`${who}: vLLM image ${c.image} is not a release tag`);
    }
  }
  return problems;
}

/** Non-root, no privilege escalation, no capabilities; Barge's own containers on a read-only root. */
export function securityProblems(ms: Manifest[], facts: Pick<ImageFacts, "repo">): string[] {
  const problems: string[] = [];
  for (const p of podSpecs(ms)) {
    for (const c of p.containers) {
      const who = `${p.owner} container ${c.name}`;
      const ctx = { ...p.spec.securityContext, ...c.securityContext };
      if (ctx.runAsNonRoot !== true || !(ctx.runAsUser > 0)) problems.push(`${who}: may run as root`);
      if (c.securityContext?.allowPrivilegeEscalation !== false) problems.push(`${who}: allows privilege escalation`);
      if (!(c.securityContext?.capabilities?.drop ?? []).includes("ALL")) problems.push(`${who}: keeps its capabilities`);
      if (isBarge(c.image, facts) && c.securityContext?.readOnlyRootFilesystem !== true) problems.push(`${who}: root filesystem is writable`);
    }
  }
  return problems;
}

/** Requests for CPU and memory and a memory limit everywhere; each agent pod holds one GPU, in its vLLM sidecar. */
export function resourceProblems(ms: Manifest[]): string[] {
  const problems: string[] = [];
  for (const p of podSpecs(ms)) {
    for (const c of p.containers) {
      const r = c.resources ?? {};
      if (!r.requests?.cpu || !r.requests?.memory || !r.limits?.memory) problems.push(`${p.owner} container ${c.name}: needs CPU and memory requests and a memory limit`);
      const gpu = r.limits?.["nvidia.com/gpu"];
      if (gpu !== undefined && r.requests?.["nvidia.com/gpu"] !== gpu) problems.push(`${p.owner} container ${c.name}: GPU request and limit differ`);
    }
    if (p.labels["app.kubernetes.io/component"] === "agent") {
      const gpus = p.containers.filter((c) => c.resources?.limits?.["nvidia.com/gpu"] !== undefined);
      const sidecar = (p.spec.initContainers ?? []).find((c: { name: string }) => c.name === gpus[0]?.name);
      if (gpus.length !== 1 || gpus[0]!.resources.limits["nvidia.com/gpu"] !== "1") problems.push(`${p.owner}: wants one container with one GPU, has ${gpus.length}`);
      else if (sidecar?.restartPolicy !== "Always") problems.push(`${p.owner}: the GPU container ${gpus[0]!.name} is not a native sidecar (init container, restartPolicy Always)`);
    }
  }
  return problems;
}

/** The agent pod outlives the agent's shutdown grace by `marginMs` (committing, releasing, vLLM's own stop). */
export function shutdownProblems(ms: Manifest[], facts: Pick<ImageFacts, "repo">, marginMs: number): string[] {
  const problems: string[] = [];
  for (const p of podSpecs(ms).filter((x) => x.labels["app.kubernetes.io/component"] === "agent")) {
    const agent = p.containers.find((c) => isBarge(c.image, facts) && c.command?.[1] === "dist/agent.mjs");
    if (!agent) {
      problems.push(`${p.owner}: runs no agent`);
      continue;
    }
    const graceMs = loadConfig(effectiveEnv(ms, agent)).AGENT_SHUTDOWN_GRACE_MS;
    const periodMs = (p.spec.terminationGracePeriodSeconds ?? 30) * 1000;
    if (periodMs < graceMs + marginMs) problems.push(`${p.owner}: terminationGracePeriodSeconds ${periodMs / 1000} leaves under ${marginMs / 1000} s past AGENT_SHUTDOWN_GRACE_MS ${graceMs}`);
  }
  return problems;
}
