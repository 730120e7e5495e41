import { createAgent } from "@barge/agent";
import { startApi } from "@barge/api";
import { createEngineSim, type EngineSim, type EngineSimOptions } from "@barge/engine-sim";
import { testLog, type TestContext } from "./context.js";

/** engine-sim, the API and agents running in this process against a test context. */
export interface Services {
  apiUrl: string;
  sim: EngineSim;
  stop(): Promise<void>;
}

/** Starts engine-sim, the API (port 0) and `agents` agents; `stop()` stops all of them. */
export async function startServices(ctx: TestContext, o: { sim?: EngineSimOptions; agents?: number } = {}): Promise<Services> {
  const deps = { db: ctx.db, s3: ctx.s3, bucket: ctx.bucket, config: ctx.config, log: testLog };
  const sim = await createEngineSim({ models: ["barge-sim-1"], ...o.sim });
  const api = await startApi({ ...deps, host: "127.0.0.1", port: 0 });
  const agents = Array.from({ length: o.agents ?? 1 }, (_, i) => createAgent({ ...deps, engineUrl: sim.url, agentId: `test-agent-${i}` }));
  for (const a of agents) await a.start();
  return {
    apiUrl: api.url,
    sim,
    async stop() {
      for (const a of agents) await a.stop({ graceful: false });
      await api.close();
      await sim.close();
    },
  };
}
