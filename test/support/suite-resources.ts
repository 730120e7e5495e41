import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import { createAgent, type Agent, type AgentDeps } from "@barge/agent";
import { createEngineSim, type EngineSim, type EngineSimOptions } from "@barge/engine-sim";
import { createTestContext, testLog, type TestContext } from "./context.js";

/** What a suite's tests open; each is closed after the test that opened it. */
export interface SuiteResources {
  /** Runs `fn` after the current test, before anything registered earlier (so what depends on a thing goes first). */
  cleanup(fn: () => Promise<void> | void): void;
  /** A fresh schema and bucket (`createTestContext(env)`). */
  context(env?: Record<string, string>): Promise<TestContext>;
  /** An in-process engine-sim (`createEngineSim(options)`). */
  sim(options?: EngineSimOptions): Promise<EngineSim>;
  /** A fresh directory under the system's temp dir, its name starting with `prefix`; removed with all it holds. */
  tempDir(prefix: string): string;
  /** An in-process agent on `ctx`, not yet started; stopped as a crash would (`graceful: false`). */
  agent(ctx: TestContext, options: Pick<AgentDeps, "engineUrl" | "agentId" | "engineProcess">): Agent;
}

/**
 * Registers the suite's afterEach: it awaits `stopFirst` (child processes, say, which must go before
 * the database and bucket they use), then runs the test's cleanups newest first.
 */
export function suiteResources(stopFirst?: () => Promise<void>): SuiteResources {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    await stopFirst?.();
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const cleanup = (fn: () => Promise<void> | void) => {
    cleanups.push(fn);
  };
  return {
    cleanup,
    async context(env) {
      const ctx = await createTestContext(env);
      cleanup(() => ctx.close());
      return ctx;
    },
    async sim(options) {
      const sim = await createEngineSim(options);
      cleanup(() => sim.close());
      return sim;
    },
    tempDir(prefix) {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      cleanup(async () => rmSync(dir, { recursive: true, force: true }));
      return dir;
    },
    agent(ctx, options) {
      const agent = createAgent({ db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, config: ctx.config, log: testLog, ...options });
      cleanup(() => agent.stop({ graceful: false }));
      return agent;
    },
  };
}
