import type { GpuReading, Logger } from "@barge/core";
import type { GpuGuard } from "./gpu-guard.js";
import { readGpus } from "./nvidia-smi.js";

export interface GpuWatchDeps {
  guard: GpuGuard;
  log: Logger;
  /** How long one nvidia-smi run may take; a hung driver must not stall the heartbeat. */
  timeoutMs: number;
}

/**
 * The node's GPUs as the heartbeat last read them, and the claim gate they set. A node without
 * nvidia-smi has no readings and never pauses. A failed reading keeps the gate as it was (a GPU
 * that was hot is not known to have cooled) and shows no readings until one works again.
 */
export class GpuWatch {
  /** The last readings; null when there are none to show. */
  gpus: GpuReading[] | null = null;

  constructor(private readonly deps: GpuWatchDeps) {}

  /** Why new claims are paused; null while the agent claims. */
  get pausedReason(): string | null {
    return this.deps.guard.pausedReason;
  }

  /** Reads the GPUs once and updates the gate; logs when claims pause or resume. */
  async sample(): Promise<void> {
    const { guard, log } = this.deps;
    const before = guard.pausedReason;
    try {
      this.gpus = (await readGpus({ timeoutMs: this.deps.timeoutMs })) ?? null;
      guard.observe(this.gpus ?? []);
    } catch (err) {
      this.gpus = null;
      log.warn({ err }, "reading the GPUs failed; the claim gate stays as it was");
      return;
    }
    const after = guard.pausedReason;
    if (after !== null && before === null) log.warn({ reason: after, gpus: this.gpus }, "GPU over its limit: claiming no new chunks");
    else if (after === null && before !== null) log.info({ was: before, gpus: this.gpus }, "GPUs back under their limits: claiming again");
  }
}
