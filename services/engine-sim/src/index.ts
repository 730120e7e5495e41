// Public API of @barge/engine-sim: an OpenAI-compatible, deterministic stand-in for vLLM.
export { createEngineSim, OWNED_BY, type EngineSim } from "./server.js";
export type { EngineSimStats } from "./stats.js";
export type { RequestLogEntry } from "./request-log.js";
export {
  parseConfig,
  resolveOptions,
  engineSimOptionsSchema,
  faultsSchema,
  DEFAULT_STANDALONE_PORT,
  USAGE,
  type EngineSimOptions,
  type ResolvedSimOptions,
  type SimFaults,
} from "./config.js";
export {
  simulate,
  expectedBody,
  generate,
  isSimPath,
  SIM_PATHS,
  SYSTEM_FINGERPRINT,
  DEFAULT_EMBEDDING_DIMENSIONS,
  type SimPath,
  type SimLimits,
  type Generation,
} from "./generate.js";
export { MIN_COMPLETION_TOKENS, MAX_COMPLETION_TOKENS } from "./filler.js";
export {
  countTokens,
  contentText,
  chatPromptTokens,
  completionPromptTokens,
  embeddingInputTokens,
  inputTokens,
  MESSAGE_OVERHEAD_TOKENS,
  type PromptInput,
} from "./tokens.js";
export { ApiError, type ErrorBody } from "./errors.js";
export { mulberry32 } from "./prng.js";
export { GpuModel, type GpuConfig, type GpuCounters, type GpuTicket } from "./gpu.js";
