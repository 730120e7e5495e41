import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { GpuReadError, NVIDIA_SMI_ARGS, parseNvidiaSmiCsv, readGpus } from "./nvidia-smi.js";

// Lines as nvidia-smi 535 prints them for `--format=csv,noheader,nounits`: an H100 under load,
// an A100 MIG slice whose utilization and power read [N/A], a T4 without a power reading.
const RECORDED = [
  "0, NVIDIA H100 80GB HBM3, 97, 79001, 81559, 71, 612.34",
  "1, NVIDIA A100-SXM4-40GB, [N/A], 9728, 40960, 34, [N/A]",
  "2, Tesla T4, 0, 0, 15360, 29, [Not Supported]",
  "",
].join("\n");

describe("nvidia-smi CSV", () => {
  it("asks for exactly the fields it parses, in CSV without header or units", () => {
    expect(NVIDIA_SMI_ARGS).toEqual([
      "--query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw",
      "--format=csv,noheader,nounits",
    ]);
  });

  it("parses recorded lines, with [N/A] and [Not Supported] as null", () => {
    expect(parseNvidiaSmiCsv(RECORDED)).toEqual([
      { index: 0, name: "NVIDIA H100 80GB HBM3", utilization_percent: 97, memory_used_mib: 79001, memory_total_mib: 81559, temperature_c: 71, power_w: 612.34 },
      { index: 1, name: "NVIDIA A100-SXM4-40GB", utilization_percent: null, memory_used_mib: 9728, memory_total_mib: 40960, temperature_c: 34, power_w: null },
      { index: 2, name: "Tesla T4", utilization_percent: 0, memory_used_mib: 0, memory_total_mib: 15360, temperature_c: 29, power_w: null },
    ]);
  });

  it("keeps a comma inside a GPU name, and CRLF line ends", () => {
    expect(parseNvidiaSmiCsv("3, Acme, Model X, 5, 10, 20, 40, 1.5\r\n")).toEqual([
      { index: 3, name: "Acme, Model X", utilization_percent: 5, memory_used_mib: 10, memory_total_mib: 20, temperature_c: 40, power_w: 1.5 },
    ]);
  });

  it("is empty for no GPUs", () => {
    expect(parseNvidiaSmiCsv("\n")).toEqual([]);
  });

  it.each([
    ["a header line", "index, name, utilization.gpu [%], memory.used [MiB], memory.total [MiB], temperature.gpu, power.draw [W]", "line 1: unreadable index"],
    ["too few fields", "0, NVIDIA H100, 97, 79001", "line 1: expected 7 fields, got 4"],
    ["units left in", "0, NVIDIA H100, 97 %, 79001 MiB, 81559 MiB, 71, 612.34 W", "line 1: unreadable utilization_percent"],
    ["an empty field", "0, NVIDIA H100, , 79001, 81559, 71, 612.34", "line 1: unreadable utilization_percent"],
    ["an error on the second line", "0, NVIDIA H100, 97, 79001, 81559, 71, 612.34\nFailed to initialize NVML: Driver/library version mismatch", "line 2: expected 7 fields, got 1"],
    ["a driver message", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", "line 1: expected 7 fields, got 1"],
  ])("rejects %s with a GpuReadError naming the line", (_, text, message) => {
    let err: unknown;
    try {
      parseNvidiaSmiCsv(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GpuReadError);
    expect((err as Error).message).toContain(message);
  });

  // Stand-ins for nvidia-smi (this machine has no GPU): shell scripts first on the PATH given.
  const bin = mkdtempSync(join(tmpdir(), "stand-in-nvidia-smi-"));
  afterAll(() => rmSync(bin, { recursive: true, force: true }));
  const standIn = (script: string) => {
    const dir = mkdtempSync(join(bin, "d-"));
    writeFileSync(join(dir, "nvidia-smi"), `#!/bin/sh\n${script}\n`);
    chmodSync(join(dir, "nvidia-smi"), 0o755);
    return { PATH: `${dir}:${process.env.PATH}` };
  };

  it("stand-in nvidia-smi: reads the recorded lines it prints, with the queried arguments", async () => {
    const env = standIn(`[ "$1 $2" = "${NVIDIA_SMI_ARGS.join(" ")}" ] || exit 7\nprintf '%s\\n' '${RECORDED.split("\n")[0]}'`);
    expect(await readGpus({ env, timeoutMs: 10_000 })).toEqual([parseNvidiaSmiCsv(RECORDED)[0]]);
  });

  it("stand-in nvidia-smi: a failing run, a hung one and garbage each reject with a GpuReadError", async () => {
    const failed = await readGpus({ env: standIn("echo 'NVIDIA-SMI has failed' >&2; exit 9"), timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(GpuReadError);
    expect((failed as Error).message).toContain("nvidia-smi failed");
    const hung = await readGpus({ env: standIn("exec sleep 30"), timeoutMs: 300 }).catch((e: unknown) => e);
    expect(hung).toBeInstanceOf(GpuReadError);
    expect((hung as Error).message).toBe("nvidia-smi timed out after 300 ms");
    const garbage = await readGpus({ env: standIn("echo '<html>'"), timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(garbage).toBeInstanceOf(GpuReadError);
    expect((garbage as Error).message).toBe("line 1: expected 7 fields, got 1");
  });

  it("reads nothing, without an error, where nvidia-smi is not on PATH", async () => {
    expect(await readGpus({ env: { PATH: "/nonexistent" }, timeoutMs: 2000 })).toBeUndefined();
  });
});
