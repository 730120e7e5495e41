// Public API of @barge/agent.
export { createAgent, type Agent, type AgentDeps } from "./agent.js";
