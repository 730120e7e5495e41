import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { Copy, DockerfileParser, type Instruction } from "dockerfile-ast";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { configSchema } from "@barge/core";
import { freePort } from "@barge/devstack";
import { suiteResources } from "../support/suite-resources.js";

// Docker cannot run here, so the production files are checked as files: docker-compose.yml
// against the hardening rules it states, .env.example against what compose reads, and the image's
// Dockerfile and .dockerignore. The image's health probe is run for real against local servers.

const ROOT = resolve(import.meta.dirname, "../..");
const read = (path: string) => readFileSync(resolve(ROOT, path), "utf8");

type Env = Record<string, string | number | boolean | null>;
interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  profiles?: string[];
  environment?: Env;
  ports?: (string | { target: number; published?: string | number; host_ip?: string })[];
  networks?: string[] | Record<string, unknown>;
  healthcheck?: { test: string[] };
  depends_on?: string[] | Record<string, { condition: string; required?: boolean }>;
  restart?: string;
}
interface Compose {
  services: Record<string, Service>;
  networks?: Record<string, { internal?: boolean } | null>;
}

const composeText = read("docker-compose.yml");
// Compose resolves YAML merge keys (`<<: *barge-env`), so the test does too.
const compose = parse(composeText, { merge: true }) as Compose;
const services = compose.services;
const names = Object.keys(services);

/** Every string value in the file (comments are not interpolated). */
const strings = (v: unknown): string[] => (typeof v === "string" ? [v] : v && typeof v === "object" ? Object.values(v).flatMap(strings) : []);
/** Every `${VAR...}` compose interpolates (a `$$` is an escaped dollar, left to the container). */
const interpolations = [...strings(compose).join("\n").matchAll(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+][^}]*)?\}/g)].map((m) => ({ name: m[1]!, rest: m[2] ?? "" }));
const requiredVars = new Set(interpolations.filter((i) => i.rest.startsWith(":?")).map((i) => i.name));
/** `${VAR:?message}`, nothing around it. */
const isRequired = (v: unknown) => typeof v === "string" && /^\$\{[A-Za-z0-9_]+:\?[^}]+\}$/.test(v);
const dependsOn = (s: Service) => (Array.isArray(s.depends_on) ? Object.fromEntries(s.depends_on.map((d) => [d, { condition: "service_started" }])) : (s.depends_on ?? {}));
const networksOf = (s: Service) => (s.networks === undefined ? ["default"] : Array.isArray(s.networks) ? s.networks : Object.keys(s.networks));
const env = (s: Service): Env => s.environment ?? {};
const runs = (s: Service, bundle: string) => (s.command ?? []).includes(`dist/${bundle}.mjs`);
const api = services.api!;
const agent = services.agent!;

/** A published port as [host ip or "" for every interface, container port]. */
function published(p: NonNullable<Service["ports"]>[number]): [string, number] {
  if (typeof p !== "string") return [p.host_ip ?? "", p.target];
  const parts = p.split(":");
  return [parts.length === 3 ? parts[0]! : "", Number(parts.at(-1)!.split("/")[0])];
}

describe("docker-compose.yml", () => {
  it("runs these services, each image pinned to a version (ours built from infra/Dockerfile)", () => {
    expect(names).toEqual(["postgres", "minio", "bucket-init", "api", "agent", "vllm", "engine-sim", "prometheus", "grafana"]);
    for (const [name, s] of Object.entries(services)) {
      if (s.build) {
        expect([name, s.build.dockerfile]).toEqual([name, "infra/Dockerfile"]);
        continue;
      }
      const [, tag = ""] = (s.image ?? "").split(":");
      expect([name, tag], `${name}: ${s.image}`).toEqual([name, expect.stringMatching(/^(v?\d+\.\d+|RELEASE\.\d{4}-\d\d-\d\dT)/)]);
    }
    expect(composeText).not.toMatch(/:latest\b/);
  });

  it("publishes nothing beyond loopback but the API's port, and the API cannot start without a key", () => {
    const open: [string, number][] = [];
    for (const [name, s] of Object.entries(services)) {
      for (const [ip, port] of (s.ports ?? []).map(published)) if (ip !== "127.0.0.1") open.push([name, port]);
    }
    expect(open).toEqual([["api", Number(env(api).API_PORT)]]);
    expect(env(api).API_HOST).toBe("0.0.0.0");
    expect(isRequired(env(api).BARGE_ADMIN_KEY) || isRequired(env(api).BARGE_API_KEY)).toBe(true);
    expect(["postgres", "minio"].map((n) => [n, services[n]!.ports])).toEqual([
      ["postgres", undefined],
      ["minio", undefined],
    ]);
    // ...and they sit on an internal network only.
    expect(compose.networks?.backend).toEqual({ internal: true });
    expect(["postgres", "minio"].map((n) => [n, networksOf(services[n]!)])).toEqual([
      ["postgres", ["backend"]],
      ["minio", ["backend"]],
    ]);
  });

  it("holds no secret: every credential is a ${VAR} from .env, required or empty by default", () => {
    const credential = /(PASSWORD|SECRET|TOKEN|_KEY|KEY_ID|SECRET_ACCESS_KEY)$/;
    const found: string[] = [];
    for (const [name, s] of Object.entries(services)) {
      for (const [key, value] of Object.entries(env(s))) {
        if (credential.test(key)) {
          found.push(`${name}.${key}`);
          expect([name, key, value]).toEqual([name, key, expect.stringMatching(/^\$\{[A-Za-z0-9_]+(:\?[^}]+|:-)\}$/)]);
        }
        // A URL's password too (DATABASE_URL).
        const userinfo = typeof value === "string" ? /:\/\/[^:/@]+:([^@]+)@/.exec(value) : null;
        if (userinfo) expect([name, key, isRequired(userinfo[1])]).toEqual([name, key, true]);
      }
    }
    expect(found).toEqual([
      "postgres.POSTGRES_PASSWORD",
      "minio.MINIO_ROOT_PASSWORD",
      ...["MINIO_ROOT_PASSWORD", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"].map((k) => `bucket-init.${k}`),
      ...["S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "BARGE_ADMIN_KEY", "BARGE_API_KEY", "METRICS_TOKEN", "S3_EVENTS_TOKEN", "WEBHOOK_SECRET"].map((k) => `api.${k}`),
      "agent.S3_ACCESS_KEY_ID",
      "agent.S3_SECRET_ACCESS_KEY",
      "vllm.HF_TOKEN",
      "grafana.GF_SECURITY_ADMIN_PASSWORD",
    ]);
    expect(requiredVars).toEqual(new Set(["POSTGRES_PASSWORD", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "MINIO_ROOT_PASSWORD", "BARGE_ADMIN_KEY", "GRAFANA_ADMIN_PASSWORD"]));
  });

  it("restarts every service: long-running ones unless stopped, one-shot jobs on failure", () => {
    const oneShot = new Set(Object.values(services).flatMap((s) => Object.entries(dependsOn(s)).filter(([, d]) => d.condition === "service_completed_successfully").map(([n]) => n)));
    expect([...oneShot]).toEqual(["bucket-init"]);
    expect(Object.fromEntries(names.map((n) => [n, services[n]!.restart]))).toEqual(Object.fromEntries(names.map((n) => [n, oneShot.has(n) ? "on-failure" : "unless-stopped"])));
  });

  it("probes the API's /readyz and the agent's /readyz on its metrics port; whatever is waited on as healthy has a healthcheck", () => {
    expect(read("services/api/src/routes/health.ts")).toContain('app.get("/readyz"');
    expect(read("services/agent/src/metrics-server.ts")).toContain('"/readyz"');
    expect(api.healthcheck?.test).toEqual(["CMD", "node", "healthcheck.mjs", `http://127.0.0.1:${env(api).API_PORT}/readyz`]);
    expect(agent.healthcheck?.test).toEqual(["CMD", "node", "healthcheck.mjs", `http://127.0.0.1:${env(agent).AGENT_METRICS_PORT}/readyz`]);
    expect(services.vllm!.healthcheck?.test.join(" ")).toContain("http://127.0.0.1:8000/health");
    expect(services["engine-sim"]!.healthcheck?.test).toEqual(["CMD", "node", "healthcheck.mjs", "http://127.0.0.1:8000/health"]);
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, d] of Object.entries(dependsOn(s))) {
        expect([name, dep, services[dep] !== undefined]).toEqual([name, dep, true]);
        if (d.condition === "service_healthy") expect([name, dep, services[dep]!.healthcheck !== undefined]).toEqual([name, dep, true]);
      }
    }
  });

  it("starts the agent once its engine is healthy: vLLM (gpu) or engine-sim (sim), whichever profile runs", () => {
    expect(dependsOn(agent).vllm).toEqual({ condition: "service_healthy", required: false });
    expect(dependsOn(agent)["engine-sim"]).toEqual({ condition: "service_healthy", required: false });
    expect([services.vllm!.profiles, services["engine-sim"]!.profiles]).toEqual([["gpu"], ["sim"]]);
    // Both answer as `engine`, the host VLLM_URL and Prometheus' vllm job name.
    expect(env(agent).VLLM_URL).toBe("http://engine:8000");
    for (const n of ["vllm", "engine-sim"]) expect(services[n]!.networks).toEqual({ default: { aliases: ["engine"] } });
  });

  it("passes the API and the agent only env names services/core/src/config.ts knows", () => {
    const known = new Set(Object.keys(configSchema.shape));
    const barge = names.filter((n) => runs(services[n]!, "api") || runs(services[n]!, "agent"));
    expect(barge).toEqual(["api", "agent"]);
    for (const n of barge) {
      const unknown = Object.keys(env(services[n]!)).filter((k) => !known.has(k));
      expect([n, unknown]).toEqual([n, []]);
    }
  });
});

describe(".env.example", () => {
  const lines = read(".env.example").split("\n");
  const defined = new Map(lines.flatMap((l) => {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(l);
    return m ? [[m[1]!, m[2]!] as const] : [];
  }));

  it("defines every variable compose reads, and nothing else but COMPOSE_PROFILES", () => {
    const used = new Set(interpolations.map((i) => i.name));
    expect(new Set(defined.keys())).toEqual(new Set([...used, "COMPOSE_PROFILES"]));
  });

  it("leaves every secret empty, and its profiles exist", () => {
    for (const v of requiredVars) if (v !== "S3_ACCESS_KEY_ID") expect([v, defined.get(v)]).toEqual([v, ""]);
    const profiles = new Set(Object.values(services).flatMap((s) => s.profiles ?? []));
    expect(profiles).toEqual(new Set(["minio", "gpu", "sim"]));
    for (const p of defined.get("COMPOSE_PROFILES")!.split(",")) expect([p, profiles.has(p)]).toEqual([p, true]);
  });

  it("is the template; .env itself is never committed", () => {
    expect(read(".gitignore").split("\n")).toContain(".env");
  });
});

describe("infra/Dockerfile and .dockerignore", () => {
  const dockerfile = DockerfileParser.parse(read("infra/Dockerfile"));
  const froms = dockerfile.getFROMs();
  const finalLine = froms.at(-1)!.getRange().start.line;
  const finalStage = dockerfile.getInstructions().filter((i) => i.getRange().start.line >= finalLine);
  const inFinal = (keyword: string): Instruction[] => finalStage.filter((i) => i.getKeyword() === keyword);
  const copies = (instructions: Instruction[]) => instructions.filter((i): i is Copy => i instanceof Copy);
  const ignored = read(".dockerignore").split("\n").filter((l) => l !== "" && !l.startsWith("#"));

  it("is multi-stage on a pinned node 24 slim base", () => {
    expect(froms.map((f) => [f.getImageName(), f.getBuildStage()])).toEqual([
      ["node", "build"],
      ["node", "runtime"],
    ]);
    for (const f of froms) expect(f.getImageTag()).toMatch(/^24\.\d+\.\d+-bookworm-slim$/);
  });

  it("ships only the bundles and the probe: no install, no node_modules in the runtime stage", () => {
    expect(inFinal("RUN")).toEqual([]);
    expect(copies(finalStage).map((c) => [c.getFlags().map((f) => `${f.getName()}=${f.getValue()}`), c.getArgumentsContent()])).toEqual([
      [["from=build"], "/src/dist ./dist"],
      [[], "infra/healthcheck.mjs ./healthcheck.mjs"],
    ]);
    expect(inFinal("CMD").map((c) => c.getArgumentsContent())).toEqual(['["node", "dist/api.mjs"]']);
  });

  it("runs as a non-root user, with a HEALTHCHECK", () => {
    const users = inFinal("USER").map((u) => u.getArgumentsContent());
    expect(users).toEqual(["1000:1000"]);
    expect(users[0]).not.toMatch(/^(root|0)(:|$)/);
    expect(inFinal("HEALTHCHECK").map((h) => h.getArgumentsContent())).toEqual(['CMD ["node", "healthcheck.mjs"]']);
  });

  it("copies only files that exist and that .dockerignore lets into the context", () => {
    const sources = copies(dockerfile.getInstructions())
      .filter((c) => c.getFlags().length === 0)
      .flatMap((i) => i.getArgumentsContent()!.split(/\s+/).slice(0, -1));
    expect(sources).toEqual(["package.json", "pnpm-lock.yaml", "pnpm-workspace.yaml", "tsconfig.json", "patches", "services", "infra/build.ts", "infra/healthcheck.mjs"]);
    for (const s of sources) {
      expect([s, existsSync(resolve(ROOT, s))]).toEqual([s, true]);
      expect([s, ignored.filter((p) => p === s || s.startsWith(`${p}/`))]).toEqual([s, []]);
    }
  });

  it(".dockerignore keeps modules, history, scratch and secrets out", () => {
    expect(ignored).toEqual(expect.arrayContaining(["**/node_modules", ".git", ".tmp", ".env", ".env.*"]));
  });
});

describe("infra/healthcheck.mjs, the image's health probe", () => {
  const { cleanup } = suiteResources();
  const probe = (url: string) =>
    new Promise<{ code: number; output: string }>((done) => {
      execFile(process.execPath, [resolve(ROOT, "infra/healthcheck.mjs"), url], (err, stdout) => done({ code: err ? Number(err.code) : 0, output: stdout }));
    });
  const serve = async (status: number) => {
    const server = createServer((_req, res) => res.writeHead(status).end("{}"));
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    cleanup(() => new Promise<void>((ok) => server.close(() => ok())));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`;
  };

  it("exits 0 on a 2xx answer and 1 on a 503, naming the status", async () => {
    const ok = await serve(200);
    expect(await probe(ok)).toEqual({ code: 0, output: `${ok}: 200\n` });
    const unready = await serve(503);
    expect(await probe(unready)).toEqual({ code: 1, output: `${unready}: 503\n` });
  });

  it("exits 1 when nothing listens", async () => {
    const url = `http://127.0.0.1:${await freePort()}/readyz`;
    expect(await probe(url)).toEqual({ code: 1, output: `${url}: fetch failed\n` });
  });
});
