import { gpuOverLimit, type GpuLimits, type GpuReading } from "@barge/core";

/**
 * GPU protection, with hysteresis: claims pause once any GPU is above a limit and resume only
 * once every GPU is `resumeMargin` under it, so a GPU hovering at its limit does not flap the
 * agent between claiming and not. No I/O: the heartbeat feeds it readings.
 */
export class GpuGuard {
  private reason: string | null = null;

  constructor(readonly limits: GpuLimits) {}

  /** Why claims are paused; null while the agent claims. */
  get pausedReason(): string | null {
    return this.reason;
  }

  /**
   * One reading of the node's GPUs; returns the paused reason after it. While paused, the
   * reason names the first GPU still over its resume threshold, at its current reading.
   */
  observe(gpus: readonly GpuReading[]): string | null {
    const slack = this.reason === null ? 0 : this.limits.resumeMargin;
    this.reason = gpus.map((g) => gpuOverLimit(g, this.limits, slack)).find((r) => r !== undefined) ?? null;
    return this.reason;
  }
}
