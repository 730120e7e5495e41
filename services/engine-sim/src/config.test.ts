import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DEFAULT_STANDALONE_PORT, parseConfig } from "./config.js";

describe("parseConfig", () => {
  it("applies standalone defaults", () => {
    expect(parseConfig([], {})).toEqual({
      host: "127.0.0.1",
      port: DEFAULT_STANDALONE_PORT,
      models: ["barge-sim-1"],
      maxNumSeqs: 16,
      prefillTokensPerSec: 0,
      decodeTokensPerSec: 0,
      maxModelLen: 8192,
      errorRate: 0,
      timeoutRate: 0,
      hangMs: 120000,
      failMarker: "__sim_fail_400__",
      seed: 1,
      requestLog: true,
    });
  });

  it("reads every SIM_* variable", () => {
    const env = {
      SIM_PORT: "9001",
      SIM_HOST: "0.0.0.0",
      SIM_MODELS: "a, b,,c",
      SIM_MAX_NUM_SEQS: "8",
      SIM_PREFILL_TPS: "5000",
      SIM_DECODE_TPS: "Infinity",
      SIM_MAX_MODEL_LEN: "2048",
      SIM_ERROR_RATE: "0.1",
      SIM_TIMEOUT_RATE: "0.2",
      SIM_HANG_MS: "500",
      SIM_FAIL_MARKER: "X",
      SIM_SEED: "7",
      SIM_REQUEST_LOG: "false",
      SIM_LOG_FILE: "/tmp/x.jsonl",
    };
    expect(parseConfig([], env)).toEqual({
      host: "0.0.0.0",
      port: 9001,
      models: ["a", "b", "c"],
      maxNumSeqs: 8,
      prefillTokensPerSec: 5000,
      decodeTokensPerSec: 0,
      maxModelLen: 2048,
      errorRate: 0.1,
      timeoutRate: 0.2,
      hangMs: 500,
      failMarker: "X",
      seed: 7,
      requestLog: false,
      logFile: "/tmp/x.jsonl",
    });
  });

  it("lets flags override env, including the vLLM-style `serve <model>` form", () => {
    const env = { SIM_PORT: "9001", SIM_MODELS: "env-model", SIM_MAX_NUM_SEQS: "8", SIM_SEED: "" };
    const config = parseConfig(["serve", "llama", "--port", "8123", "--max-num-seqs", "32", "--model", "extra", "--decode-tps", "40"], env);
    expect(config).toMatchObject({ port: 8123, models: ["llama", "extra"], maxNumSeqs: 32, decodeTokensPerSec: 40, seed: 1 });
    expect(parseConfig(["--model", "a", "--model", "b"], env)?.models).toEqual(["a", "b"]);
    expect(parseConfig(["serve", "org/model", "--served-model-name", "alias"], {})?.models).toEqual(["alias"]);
  });

  it("returns null for --help and throws on bad input", () => {
    expect(parseConfig(["--help"], {})).toBeNull();
    expect(() => parseConfig(["--port", "abc"], {})).toThrow("--port / SIM_PORT");
    expect(() => parseConfig([], { SIM_ERROR_RATE: "2" })).toThrow("--error-rate / SIM_ERROR_RATE");
    expect(() => parseConfig([], { SIM_REQUEST_LOG: "maybe" })).toThrow("--request-log / SIM_REQUEST_LOG");
    expect(() => parseConfig(["--unknown"], {})).toThrow();
    expect(() => parseConfig(["run", "x"], {})).toThrow("expected: serve <model>");
  });
});

describe("main.ts", () => {
  it("serves as a standalone process and exits 0 on SIGTERM", async () => {
    const main = fileURLToPath(new URL("./main.ts", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", main, "serve", "drop-in", "--port", "0"], {
      cwd: fileURLToPath(new URL("../../..", import.meta.url)),
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      let stdout = "";
      child.stdout.setEncoding("utf8");
      const line = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (chunk: string) => {
          stdout += chunk;
          if (stdout.includes("\n")) resolve(stdout.trim());
        });
        child.once("exit", (code) => reject(new Error(`exited early with ${code}: ${stdout}`)));
      });
      const match = /^engine-sim listening on (http:\/\/127\.0\.0\.1:\d+) models=drop-in \(simulated\)$/.exec(line);
      expect(match).not.toBeNull();
      const models = (await (await fetch(`${match?.[1]}/v1/models`)).json()) as { data: { id: string }[] };
      expect(models.data.map((m) => m.id)).toEqual(["drop-in"]);
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      expect((await exited)[0]).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
