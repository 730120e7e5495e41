// Production bundles: one self-contained ESM file per long-running service, so a deployment runs
// plain `node dist/<service>.mjs` without a TypeScript loader (tsx's loader thread alone costs
// ~36 MB of RSS per process and slows start-up).
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The services that run as their own processes, by bundle name; `migrate` is the one-shot `barge migrate`. */
export const SERVICE_ENTRIES = {
  api: "services/api/src/main.ts",
  agent: "services/agent/src/main.ts",
  "engine-sim": "services/engine-sim/src/main.ts",
  migrate: "services/cli/src/migrate-main.ts",
} as const;

/** Bundles every service into `outDir` (default `dist/`); returns the bundle paths by name. */
export async function buildServices(outDir = join(root, "dist")): Promise<Record<keyof typeof SERVICE_ENTRIES, string>> {
  rmSync(outDir, { recursive: true, force: true });
  await build({
    absWorkingDir: root,
    entryPoints: Object.entries(SERVICE_ENTRIES).map(([out, input]) => ({ in: input, out })),
    outdir: outDir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22.19",
    sourcemap: "linked",
    legalComments: "none",
    logLevel: "warning",
    // pg tries `require("pg-native")` only when asked for native bindings; we never ask.
    external: ["pg-native"],
    // CommonJS dependencies (pg, pino, the AWS SDK's helpers) call require() for Node built-ins.
    banner: { js: 'import { createRequire as __bargeCreateRequire } from "node:module"; const require = __bargeCreateRequire(import.meta.url);' },
  });
  return Object.fromEntries(Object.keys(SERVICE_ENTRIES).map((name) => [name, join(outDir, `${name}.mjs`)])) as Record<keyof typeof SERVICE_ENTRIES, string>;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv[2] ?? join(root, "dist");
  const bundles = await buildServices(out);
  for (const [name, path] of Object.entries(bundles)) console.log(`${name}: ${path}`);
}
