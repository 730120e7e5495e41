import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { ConfigMap, Namespace, Secret, Service } from "kubernetes-models/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

// Reading infra/k8s/: the documents, their schemas, and the pod templates inside them.

/** A parsed manifest; its shape is what the schema check vouches for. */
export type K8sObject = Record<string, any>;

/** One YAML document and the file it came from. */
export interface Manifest {
  file: string;
  doc: K8sObject;
}

/** Every YAML document under `dir`, in file order. */
export function loadManifests(dir: string): Manifest[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(dir, file), "utf8")).map((d) => {
        if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]!.message}`);
        return { file, doc: d.toJS() as K8sObject };
      }),
    );
}

/** The kinds infra/k8s may hold, each with its model: the Kubernetes API's schema, KEDA's and the Prometheus Operator's CRD schemas. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "batch/v1/Job": Job,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
};

/** Each document against its kind's schema; a kind without a model here is a problem too. */
export function schemaProblems(ms: Manifest[]): string[] {
  const problems: string[] = [];
  for (const { file, doc } of ms) {
    const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
    const who = `${file}: ${doc.kind} ${doc.metadata?.name}`;
    if (!Model) {
      problems.push(`${who}: no schema for ${doc.apiVersion} ${doc.kind}`);
      continue;
    }
    try {
      new Model(doc as never).validate();
    } catch (err) {
      problems.push(`${who}: ${(err as Error).message}`);
    }
    if (doc.kind !== "Namespace" && !doc.metadata?.namespace) problems.push(`${who}: has no namespace`);
  }
  return problems;
}

/** A container of a pod template. */
export type Container = Record<string, any>;

/** A pod template, its owner (`Deployment barge-api`), labels, and its init and main containers together. */
export interface PodSpecOf {
  owner: string;
  namespace: string;
  labels: Record<string, string>;
  spec: K8sObject;
  containers: Container[];
}

/** The pod templates of every Deployment and Job. */
export function podSpecs(ms: Manifest[]): PodSpecOf[] {
  return ms
    .filter((m) => m.doc.kind === "Deployment" || m.doc.kind === "Job")
    .map(({ doc }) => {
      const spec = doc.spec.template.spec;
      return {
        owner: `${doc.kind} ${doc.metadata.name}`,
        namespace: doc.metadata.namespace,
        labels: doc.spec.template.metadata?.labels ?? {},
        spec,
        containers: [...(spec.initContainers ?? []), ...spec.containers],
      };
    });
}

/** Runs `check` on every manifest with a finder and a `say` that prefixes the object; returns what was said. */
export function problemsOf(ms: Manifest[], check: (m: Manifest, find: (kind: string) => Manifest[], say: (problem: string) => void) => void): string[] {
  const problems: string[] = [];
  const find = (kind: string) => ms.filter((m) => m.doc.kind === kind);
  for (const m of ms) check(m, find, (p) => problems.push(`${m.doc.kind} ${m.doc.metadata.name}: ${p}`));
  return problems;
}
