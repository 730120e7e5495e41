import type { Config } from "@barge/core";
import { round } from "./procs.js";

// The load a fleet puts on Postgres and S3 in steady state, from the config defaults and a stated
// per-GPU request rate: the formulas of docs/scaling.md, computed, so the doc's table and the
// claims benchmark's JSON come from one place. One agent per GPU, one chunk running at a time.

/** A vLLM GPU serving an 8B-class model on ~300-token prompts and ~200-token completions. */
export const GPU_REQUESTS_PER_S = 20;
/** Round trips of a segment commit: BEGIN, checkpoint, segment rows, request errors, failure threshold, usage, COMMIT. */
export const COMMIT_STATEMENTS = 7;
/** Statements of one housekeeping pass: rescue, expire, leftover segments, departed agents. */
const HOUSEKEEPING_STATEMENTS = 4;

type RateConfig = Pick<Config, "CHUNK_SIZE" | "SEGMENT_MAX_LINES" | "SEGMENT_MAX_MS" | "LEASE_SECONDS" | "AGENT_POLL_MS">;

/** Per-second rates of `gpus` busy GPUs at `perGpu` requests/s each (and of as many idle agents). */
export function fleetRates(c: RateConfig, gpus: number, perGpu = GPU_REQUESTS_PER_S) {
  const segmentsPerGpu = Math.max(perGpu / c.SEGMENT_MAX_LINES, 1000 / c.SEGMENT_MAX_MS);
  const claimsPerGpu = perGpu / c.CHUNK_SIZE;
  // The lease ticker of a running chunk (chunk-runner.ts) and the agent's presence heartbeat.
  const leaseRenewalsPerGpu = 1000 / Math.min(c.LEASE_SECONDS * 500, 2000);
  const presencePerGpu = 1 / c.LEASE_SECONDS;
  const housekeepingPerGpu = HOUSEKEEPING_STATEMENTS / (c.LEASE_SECONDS / 2);
  // Each segment is PUT once and read once more when its chunk's output part is built; each chunk
  // is one ranged GET of the input and one UploadPart.
  const s3PerGpu = segmentsPerGpu * 2 + claimsPerGpu * 2;
  const idlePollPerAgent = 2 * (1000 / c.AGENT_POLL_MS);
  const r = (x: number) => round(x * gpus, 1);
  return {
    gpus,
    requests_per_s_per_gpu: perGpu,
    requests_per_s: r(perGpu),
    chunk_claims_per_s: r(claimsPerGpu),
    segment_commits_per_s: r(segmentsPerGpu),
    lease_renewals_per_s: r(leaseRenewalsPerGpu),
    presence_heartbeats_per_s: r(presencePerGpu),
    busy_statements_per_s: r(leaseRenewalsPerGpu + presencePerGpu + housekeepingPerGpu + segmentsPerGpu * COMMIT_STATEMENTS + claimsPerGpu * 2),
    idle_statements_per_s: r(idlePollPerAgent + presencePerGpu + housekeepingPerGpu),
    s3_requests_per_s: r(s3PerGpu),
    s3_puts_per_s: r(segmentsPerGpu),
  };
}
