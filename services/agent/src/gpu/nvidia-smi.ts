import { execFile } from "node:child_process";
import type { GpuReading } from "@barge/core";
import { z } from "zod";

/** The fields asked of nvidia-smi, in the order its CSV lines carry them. */
export const GPU_QUERY_FIELDS = ["index", "name", "utilization.gpu", "memory.used", "memory.total", "temperature.gpu", "power.draw"] as const;

/** The argv of one reading: CSV without header or units, so every value is a bare number or "[N/A]". */
export const NVIDIA_SMI_ARGS = [`--query-gpu=${GPU_QUERY_FIELDS.join(",")}`, "--format=csv,noheader,nounits"];

// nvidia-smi prints these for a field a GPU does not report (a MIG slice's utilization, a
// board without a power sensor); they become null rather than failing the whole reading.
const unavailable = z.enum(["[N/A]", "N/A", "[Not Supported]", "[Unknown Error]"]).transform(() => null);
const decimal = z.string().regex(/^-?\d+(\.\d+)?$/, "not a number").transform(Number);
const measured = z.union([unavailable, decimal]);
const gpuLine = z.object({
  index: z.string().regex(/^\d+$/, "not a GPU index").transform(Number),
  name: z.string().min(1),
  utilization_percent: measured,
  memory_used_mib: measured,
  memory_total_mib: measured,
  temperature_c: measured,
  power_w: measured,
});

/** A reading that failed (nvidia-smi erred, hung, or printed something other than its CSV); the agent goes on without it. */
export class GpuReadError extends Error {
  override readonly name = "GpuReadError";
}

/**
 * Parses `nvidia-smi --query-gpu=... --format=csv,noheader,nounits` output, one GPU a line.
 * Strict: a line with fewer than the queried fields, or a field that is neither a number nor an
 * "unavailable" marker, is a GpuReadError naming its line.
 */
export function parseNvidiaSmiCsv(text: string): GpuReading[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  return lines.map((line, i) => {
    // nvidia-smi separates fields with ", "; no queried field but `name` holds text, and it sits
    // second, so a name with a comma in it is everything between the first and the last five.
    const parts = line.split(",").map((p) => p.trim());
    if (parts.length < GPU_QUERY_FIELDS.length) throw new GpuReadError(`line ${i + 1}: expected ${GPU_QUERY_FIELDS.length} fields, got ${parts.length}`);
    const name = parts.slice(1, -5).join(", ");
    const [utilization, used, total, temperature, power] = parts.slice(-5);
    const parsed = gpuLine.safeParse({
      index: parts[0],
      name,
      utilization_percent: utilization,
      memory_used_mib: used,
      memory_total_mib: total,
      temperature_c: temperature,
      power_w: power,
    });
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new GpuReadError(`line ${i + 1}: unreadable ${issue.path.join(".")} in ${JSON.stringify(line.slice(0, 200))}`);
    }
    return parsed.data;
  });
}

export interface ReadGpusOptions {
  /** Where `nvidia-smi` is looked up (its PATH); the process's own env by default. */
  env?: NodeJS.ProcessEnv;
  /** A hung driver must not hang the heartbeat. */
  timeoutMs: number;
}

/**
 * Reads the node's GPUs through nvidia-smi. Undefined when nvidia-smi is not on PATH (a node
 * without NVIDIA GPUs); a GpuReadError when it fails, times out or prints something else.
 */
export function readGpus(opts: ReadGpusOptions): Promise<GpuReading[] | undefined> {
  return new Promise((resolve, reject) => {
    execFile(
      "nvidia-smi",
      NVIDIA_SMI_ARGS,
      { env: opts.env ?? process.env, timeout: opts.timeoutMs, maxBuffer: 1024 * 1024, shell: false, windowsHide: true },
      (err, stdout) => {
        if (err && (err as NodeJS.ErrnoException).code === "ENOENT") return resolve(undefined);
        if (err) return reject(new GpuReadError(err.killed ? `nvidia-smi timed out after ${opts.timeoutMs} ms` : `nvidia-smi failed: ${err.message.slice(0, 300)}`));
        try {
          resolve(parseNvidiaSmiCsv(stdout));
        } catch (parseErr) {
          reject(parseErr instanceof Error ? parseErr : new GpuReadError(String(parseErr)));
        }
      },
    );
  });
}
