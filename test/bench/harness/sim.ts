import type { EngineSimStats } from "@barge/engine-sim";

/** engine-sim's GET /sim/stats: its config and GPU counters (slot-seconds busy and idle, tokens, ...). */
export async function simStats(simUrl: string): Promise<EngineSimStats> {
  const res = await fetch(`${simUrl}/sim/stats`);
  if (!res.ok) throw new Error(`GET /sim/stats answered ${res.status}`);
  return (await res.json()) as EngineSimStats;
}

/** Slot occupancy over the sim's active window (first request to last completion). */
export function occupancy(stats: EngineSimStats): { busySlotSeconds: number; idleSlotSeconds: number; idleFraction: number; windowSeconds: number } {
  const { busySlotSeconds, idleSlotSeconds } = stats.counters;
  const total = busySlotSeconds + idleSlotSeconds;
  return {
    busySlotSeconds,
    idleSlotSeconds,
    idleFraction: total > 0 ? idleSlotSeconds / total : 0,
    windowSeconds: total / stats.config.maxNumSeqs,
  };
}

/** Samples the sim's running/waiting counts, to see whether the feeder kept every slot busy. */
export class SimSampler {
  private readonly timer: NodeJS.Timeout;
  private readonly samples: { t: number; running: number; waiting: number; completed: number }[] = [];
  private busy = false;

  constructor(
    private readonly simUrl: string,
    intervalMs = 250,
  ) {
    this.timer = setInterval(() => void this.sample(), intervalMs);
    this.timer.unref();
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const s = await simStats(this.simUrl);
      this.samples.push({ t: Date.now(), running: s.counters.running, waiting: s.counters.waiting, completed: s.counters.completed });
    } catch {
      // A missed sample is no loss.
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Over samples taken between `from` and `to` (epoch ms): how often slots were left free, and the mean occupancy. */
  summary(maxNumSeqs: number, from = 0, to = Infinity) {
    const inside = this.samples.filter((s) => s.t >= from && s.t <= to);
    const n = inside.length || 1;
    return {
      samples: inside.length,
      mean_running: Math.round((inside.reduce((a, s) => a + s.running, 0) / n) * 10) / 10,
      fraction_with_free_slots: Math.round((inside.filter((s) => s.running < maxNumSeqs).length / n) * 1000) / 1000,
      fraction_with_empty_queue: Math.round((inside.filter((s) => s.waiting === 0).length / n) * 1000) / 1000,
    };
  }
}
