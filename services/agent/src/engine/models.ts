import { setTimeout as sleep } from "node:timers/promises";
import { backoffDelay, oneLine, registerAgent, waitingModels, type AgentConfig, type AgentHeartbeat, type Db, type Logger } from "@barge/core";
import type { EngineClient } from "./engine-client.js";
import type { EngineProcess } from "./engine-process.js";

export interface EngineModelsDeps {
  db: Db;
  log: Logger;
  config: Pick<AgentConfig, "AGENT_POLL_MS" | "ENGINE_MODEL" | "ENGINE_SWAP_AFTER_SECONDS">;
  engine: EngineClient;
  /** Where the engine is, for the log lines of an engine that does not answer. */
  engineUrl: string;
  /** The engine this agent starts itself (ENGINE_COMMAND); it picks and swaps the model. */
  engineProcess?: EngineProcess | undefined;
  /** The agent's id and host, under which it registers. */
  agentId: string;
  hostname: string;
  /** The agent's stop: every wait here ends with it. */
  signal: AbortSignal;
  /** The agent's state as of now, recorded with every registration. */
  heartbeat?: () => AgentHeartbeat;
}

/**
 * The models the engine beside the agent serves, which are what the agent claims for: discovered
 * from the engine, registered in `agents`, and for an ENGINE_COMMAND engine, picked and swapped
 * by the work waiting in the queue.
 */
export class EngineModels {
  /** The engine's models as last read; empty while it is swapping or has not answered yet. */
  list: string[] = [];
  /** Why the agent is still waiting for its engine, while it is; the agent's /readyz says it. */
  waiting: string | undefined;

  constructor(private readonly deps: EngineModelsDeps) {}

  /** Records the agent, its models, its heartbeat state and that it is alive. */
  register(): Promise<void> {
    return registerAgent(this.deps.db, { id: this.deps.agentId, hostname: this.deps.hostname, models: this.list, ...this.deps.heartbeat?.() });
  }

  /** Waits until the engine lists at least one model (retrying with backoff) and returns them; empty once the agent stops. */
  async waitForModels(): Promise<string[]> {
    const { engine, log, signal } = this.deps;
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        const served = await engine.models(signal);
        if (served.length > 0) {
          this.waiting = undefined;
          return served;
        }
        this.waiting = `the engine at ${this.deps.engineUrl} serves no models yet`;
      } catch (err) {
        if (signal.aborted) break;
        // vLLM takes minutes to load a large model: waiting is normal, so one line now and then, no stack.
        this.waiting = `the engine at ${this.deps.engineUrl} is not up yet (${oneLine(err)}); it may still be loading a model`;
      }
      if (attempt % 10 === 0) log.warn({ attempt: attempt + 1 }, `waiting: ${this.waiting}; retrying`);
      await sleep(backoffDelay(attempt + 1, { base: 250, cap: 2000 }), undefined, { signal }).catch(() => undefined);
    }
    return [];
  }

  /** Re-reads the served models (an engine may restart with another) and marks the agent alive. */
  async refresh(): Promise<void> {
    try {
      const served = await this.deps.engine.models(this.deps.signal);
      if (served.length > 0) this.list = served;
    } catch (err) {
      this.deps.log.debug({ err }, "model refresh failed; keeping the last list");
    }
    await this.register();
  }

  /** Starts the ENGINE_COMMAND engine on the model waited for longest (or ENGINE_MODEL); waits while nothing waits. */
  async loadFirstModel(proc: EngineProcess): Promise<void> {
    const { db, config, signal } = this.deps;
    while (!signal.aborted) {
      const model = (await waitingModels(db))[0]?.model ?? config.ENGINE_MODEL;
      if (model !== undefined) {
        await proc.start(model);
        // A stop that came meanwhile already stopped the engine it found: stop this one too.
        if (signal.aborted) await proc.stop();
        return;
      }
      await sleep(config.AGENT_POLL_MS, undefined, { signal }).catch(() => undefined);
    }
  }

  /**
   * Called when nothing could be claimed: the loaded model has no queued work. Swapping costs a
   * model load, so it only happens for work that has waited ENGINE_SWAP_AFTER_SECONDS; until then
   * an agent already serving that model may take it. False when there is no engine to swap.
   */
  async maybeSwap(): Promise<boolean> {
    const proc = this.deps.engineProcess;
    if (!proc || this.deps.signal.aborted) return false;
    const due = Date.now() - this.deps.config.ENGINE_SWAP_AFTER_SECONDS * 1000;
    const next = (await waitingModels(this.deps.db)).find((w) => w.model !== proc.model && w.oldest.getTime() <= due);
    if (!next) return false;
    this.deps.log.info({ from: proc.model, to: next.model, waitingSince: next.oldest }, "no work for the loaded model: swapping the engine");
    // Nothing claimed means nothing in flight: the engine is already drained.
    this.list = [];
    await proc.start(next.model);
    const served = await this.waitForModels();
    if (served.length > 0) this.list = served;
    await this.register();
    return true;
  }
}
