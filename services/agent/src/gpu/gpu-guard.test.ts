import type { GpuReading } from "@barge/core";
import { describe, expect, it } from "vitest";
import { GpuGuard } from "./gpu-guard.js";

const gpu = (index: number, temperature_c: number | null, memory_used_mib: number | null = 1000): GpuReading => ({
  index,
  name: "NVIDIA L4",
  utilization_percent: 50,
  memory_used_mib,
  memory_total_mib: 20000,
  temperature_c,
  power_w: 60,
});

describe("GpuGuard", () => {
  it("pauses above the temperature limit and resumes only the margin under it", () => {
    const guard = new GpuGuard({ maxTempC: 85, resumeMargin: 5 });
    // At the limit is not above it; the second GPU's heat pauses the node.
    expect([85, 86, 84, 80, 79.5].map((t) => guard.observe([gpu(0, 70), gpu(1, t)]))).toEqual([
      null,
      "gpu 1 at 86 °C (limit 85)",
      "gpu 1 at 84 °C (limit 85)",
      null,
      null,
    ]);
  });

  it("checks memory only when GPU_MAX_MEMORY_PERCENT is set, with the same margin in points", () => {
    expect(new GpuGuard({ maxTempC: 85, resumeMargin: 5 }).observe([gpu(0, 40, 19900)])).toBeNull();
    const guard = new GpuGuard({ maxTempC: 85, maxMemoryPercent: 95, resumeMargin: 5 });
    expect([19200, 18500, 17900].map((used) => guard.observe([gpu(0, 40, used)]))).toEqual([
      "gpu 0 memory at 96% (limit 95%)",
      "gpu 0 memory at 93% (limit 95%)",
      null,
    ]);
  });

  it("ignores fields nvidia-smi did not report, and resumes when the GPUs are gone", () => {
    const guard = new GpuGuard({ maxTempC: 85, maxMemoryPercent: 90, resumeMargin: 5 });
    expect(guard.observe([gpu(0, null, null)])).toBeNull();
    expect(guard.observe([gpu(0, 99)])).toBe("gpu 0 at 99 °C (limit 85)");
    expect(guard.pausedReason).toBe("gpu 0 at 99 °C (limit 85)");
    expect(guard.observe([])).toBeNull();
  });
});
