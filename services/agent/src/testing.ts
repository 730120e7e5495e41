// Internals the test suites drive one at a time (`@barge/agent/testing`); production code uses
// only the package root.
export { startChunk, type ChunkRun, type ChunkRunnerDeps, type ChunkOutcome } from "./run/chunk-runner.js";
export { commitSegment } from "./run/segment-writer.js";
export { buildResultLine } from "./run/result-line.js";
export { createEngineClient, EngineRequestError, type EngineClient, type EngineRequest, type EngineResponse } from "./engine/engine-client.js";
export { createEngineProcess, engineArgv } from "./engine/engine-process.js";
export { uploadChunkPart } from "./parts/build-part.js";
export { finalizeBatch } from "./finalize/finalizer.js";
