import { parseArgs } from "node:util";
import { z } from "zod";

// Options for createEngineSim, validated once with zod, and the env/CLI parser of the standalone
// process. The CLI mimics `vllm serve MODEL --port P --max-num-seqs N` so the sim can replace
// vLLM in an ENGINE_COMMAND template.

/** Options of createEngineSim; every field is optional. */
export interface EngineSimOptions {
  /** Interface to listen on (default "127.0.0.1"). */
  host?: string;
  /** Port; 0 picks a free one (default 0). */
  port?: number;
  /** Served model ids; /metrics labels use the first (default ["barge-sim-1"]). */
  models?: string[];
  /** Concurrent sequences ("GPU slots"); the rest wait FIFO (default 16). */
  maxNumSeqs?: number;
  /** Prompt tokens per second per sequence; 0 or Infinity = instant (default 0). */
  prefillTokensPerSec?: number;
  /** Generated tokens per second per sequence; 0 or Infinity = instant (default 0). */
  decodeTokensPerSec?: number;
  /** Context window in tokens (default 8192). */
  maxModelLen?: number;
  /** Fraction (0..1) of valid requests answered 500 (default 0). */
  errorRate?: number;
  /** Fraction (0..1) of valid requests never answered (default 0). */
  timeoutRate?: number;
  /** How long a hung request is held before its socket is destroyed (default 120000). */
  hangMs?: number;
  /** Requests whose prompt/messages/input/instructions contain this string get a 400; "" disables (default "__sim_fail_400__"). Matched on the request's JSON text first, so a non-ASCII marker must not arrive \u-escaped. */
  failMarker?: string;
  /** Seed of the fault PRNG (default 1). */
  seed?: number;
  /** Keep an in-memory log of inference requests (default true). */
  requestLog?: boolean;
  /** Also append each finished request as a JSONL line to this file. */
  logFile?: string;
}

// Infinity means "instant" like 0; normalizing keeps the config JSON-serializable.
const rate = z.preprocess((v) => (v === Infinity ? 0 : v), z.number().min(0));
const fraction = z.number().min(0).max(1);

/** Fault-injection settings, changeable live through setFaults / POST /sim/faults. */
export const faultsSchema = z.strictObject({
  errorRate: fraction,
  timeoutRate: fraction,
  hangMs: z.number().int().min(0),
  failMarker: z.string(),
  seed: z.number().int(),
});

/** Current fault-injection settings. */
export type SimFaults = z.infer<typeof faultsSchema>;

/** Validates EngineSimOptions and fills defaults. */
export const engineSimOptionsSchema = z.strictObject({
  host: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(0).max(65535).default(0),
  models: z.array(z.string().min(1)).min(1).default(["barge-sim-1"]),
  maxNumSeqs: z.number().int().min(1).default(16),
  prefillTokensPerSec: rate.default(0),
  decodeTokensPerSec: rate.default(0),
  maxModelLen: z.number().int().min(1).default(8192),
  errorRate: fraction.default(0),
  timeoutRate: fraction.default(0),
  hangMs: z.number().int().min(0).default(120_000),
  failMarker: z.string().default("__sim_fail_400__"),
  seed: z.number().int().default(1),
  requestLog: z.boolean().default(true),
  logFile: z.string().min(1).optional(),
});

/** EngineSimOptions with every default applied. */
export type ResolvedSimOptions = z.output<typeof engineSimOptionsSchema>;

/** Validates options and applies defaults; throws an Error naming each bad field. */
export function resolveOptions(options: EngineSimOptions): ResolvedSimOptions {
  const result = engineSimOptionsSchema.safeParse(options);
  if (!result.success) throw new Error(`invalid engine-sim options:\n${z.prettifyError(result.error)}`);
  return result.data;
}

type FieldKind = "number" | "string" | "boolean";

// One row per scalar option: its CLI flag and env variable. `models` is handled apart because it
// also comes from `serve <model>` and repeatable flags.
const FIELDS = [
  { key: "port", flag: "port", env: "SIM_PORT", kind: "number" },
  { key: "host", flag: "host", env: "SIM_HOST", kind: "string" },
  { key: "maxNumSeqs", flag: "max-num-seqs", env: "SIM_MAX_NUM_SEQS", kind: "number" },
  { key: "prefillTokensPerSec", flag: "prefill-tps", env: "SIM_PREFILL_TPS", kind: "number" },
  { key: "decodeTokensPerSec", flag: "decode-tps", env: "SIM_DECODE_TPS", kind: "number" },
  { key: "maxModelLen", flag: "max-model-len", env: "SIM_MAX_MODEL_LEN", kind: "number" },
  { key: "errorRate", flag: "error-rate", env: "SIM_ERROR_RATE", kind: "number" },
  { key: "timeoutRate", flag: "timeout-rate", env: "SIM_TIMEOUT_RATE", kind: "number" },
  { key: "hangMs", flag: "hang-ms", env: "SIM_HANG_MS", kind: "number" },
  { key: "failMarker", flag: "fail-marker", env: "SIM_FAIL_MARKER", kind: "string" },
  { key: "seed", flag: "seed", env: "SIM_SEED", kind: "number" },
  { key: "requestLog", flag: "request-log", env: "SIM_REQUEST_LOG", kind: "boolean" },
  { key: "logFile", flag: "log-file", env: "SIM_LOG_FILE", kind: "string" },
] as const satisfies readonly { key: keyof EngineSimOptions; flag: string; env: string; kind: FieldKind }[];

/** Port of the standalone process when neither SIM_PORT nor --port is given (vLLM's default). */
export const DEFAULT_STANDALONE_PORT = 8000;

/** Usage text of the standalone process. */
export const USAGE = [
  "usage: engine-sim [serve <model>] [--model M]... [--served-model-name M]... [--port P] [--host H]",
  "                  [--max-num-seqs N] [--prefill-tps T] [--decode-tps T] [--max-model-len L]",
  "                  [--error-rate R] [--timeout-rate R] [--hang-ms MS] [--fail-marker S] [--seed S]",
  "                  [--request-log true|false] [--log-file PATH]",
  `env: SIM_MODELS (comma list), ${FIELDS.map((f) => f.env).join(", ")}; flags override env.`,
].join("\n");

function coerce(raw: string, kind: FieldKind): unknown {
  const text = raw.trim();
  if (kind === "string") return raw;
  // Left as a string when unparseable, so zod reports the field with the offending value.
  if (kind === "boolean") return text === "true" || text === "1" ? true : text === "false" || text === "0" ? false : raw;
  return text === "" ? raw : Number(text);
}

/** Options of the standalone process from argv (flags, `serve <model>`) over env; throws on bad input. Returns null for --help. */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ResolvedSimOptions | null {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      ...Object.fromEntries(FIELDS.map((f) => [f.flag, { type: "string" } as const])),
      model: { type: "string", multiple: true },
      "served-model-name": { type: "string", multiple: true },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help === true) return null;

  let servedModel: string | undefined;
  if (positionals.length > 0) {
    if (positionals[0] !== "serve" || positionals.length !== 2) {
      throw new Error(`unexpected arguments: ${positionals.join(" ")} (expected: serve <model>)\n${USAGE}`);
    }
    servedModel = positionals[1];
  }

  const input: Record<string, unknown> = { port: DEFAULT_STANDALONE_PORT };
  const flags: Record<string, unknown> = values;
  for (const field of FIELDS) {
    const flagValue = flags[field.flag];
    const raw = typeof flagValue === "string" ? flagValue : env[field.env];
    // An empty variable (SIM_PORT=) means unset, as shells and compose files commonly produce it.
    if (raw !== undefined && raw !== "") input[field.key] = coerce(raw, field.kind);
  }

  // vLLM semantics: --served-model-name renames what `serve <model>` loads.
  const alias = values["served-model-name"];
  const flagModels = [...(servedModel === undefined ? [] : [servedModel]), ...(Array.isArray(values.model) ? values.model : [])];
  const envModels = env.SIM_MODELS?.split(",").map((m) => m.trim()).filter((m) => m !== "");
  const models = Array.isArray(alias) && alias.length > 0 ? alias : flagModels.length > 0 ? flagModels : envModels;
  if (models !== undefined && models.length > 0) input.models = models;

  const result = engineSimOptionsSchema.safeParse(input);
  if (!result.success) {
    const names = result.error.issues.map((issue) => {
      const field = FIELDS.find((f) => f.key === issue.path[0]);
      return field ? `--${field.flag} / ${field.env}: ${issue.message}` : `${issue.path.join(".")}: ${issue.message}`;
    });
    throw new Error(`invalid engine-sim config:\n  ${names.join("\n  ")}`);
  }
  return result.data;
}
