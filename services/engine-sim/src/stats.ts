import type { ResolvedSimOptions, SimFaults } from "./config.js";
import type { GpuCounters } from "./gpu.js";
import type { InferenceCounters } from "./inference.js";

/** GET /sim/stats: configuration, live faults and counters. */
export interface EngineSimStats {
  simulated: true;
  config: {
    models: string[];
    maxNumSeqs: number;
    prefillTokensPerSec: number;
    decodeTokensPerSec: number;
    maxModelLen: number;
    requestLog: boolean;
    logFile: string | null;
  };
  faults: SimFaults;
  counters: GpuCounters & InferenceCounters;
}

/** Assembles the stats snapshot from the configuration and the live faults and counters. */
export function simStats(cfg: ResolvedSimOptions, faults: SimFaults, gpu: GpuCounters, inference: InferenceCounters): EngineSimStats {
  return {
    simulated: true,
    config: {
      models: cfg.models,
      maxNumSeqs: cfg.maxNumSeqs,
      prefillTokensPerSec: cfg.prefillTokensPerSec,
      decodeTokensPerSec: cfg.decodeTokensPerSec,
      maxModelLen: cfg.maxModelLen,
      requestLog: cfg.requestLog,
      logFile: cfg.logFile ?? null,
    },
    faults,
    counters: { ...gpu, ...inference },
  };
}
