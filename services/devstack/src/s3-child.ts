// Entry of the embedded S3's own process. s3rver parses whatever reaches it; run here, a crash
// in it (or in its parsers) ends only this process, which the stack's supervisor restarts.
// s3rver checks no signatures, so it listens only on a Unix socket in an owner-only directory,
// and the public loopback port is a SigV4-verifying proxy in front of it, in this same process.
// argv: <directory> <port> <buckets as JSON> <credentials file> <socket path>.
// Tells the parent `{ ready: endpoint }` over IPC.
import { rmSync } from "node:fs";
import { z } from "zod";
import { startS3AuthProxy } from "./s3-auth-proxy.js";
import { readS3Credentials } from "./s3-credentials.js";
import { startS3rverOnSocket } from "./s3.js";

const args = z.tuple([z.string().min(1), z.coerce.number().int().min(1).max(65535), z.string(), z.string().min(1), z.string().min(1)]).parse(process.argv.slice(2));
const buckets = z.array(z.string().min(1)).parse(JSON.parse(args[2]));
let started = false;
/** Ends the process on any failure with one line (not a stack trace), which the parent quotes or logs. */
const fail = (err: unknown) => {
  const why = err instanceof Error ? err.message : String(err);
  process.stderr.write(`embedded S3 ${started ? "crashed" : "could not start"}: ${why}\n`);
  process.exit(1);
};
process.on("uncaughtException", fail);
/** s3rver on the private socket, then the verifying proxy on the public port. */
const start = async () => {
  const creds = readS3Credentials(args[3]);
  // A child killed before it could close leaves its socket file behind.
  rmSync(args[4], { force: true });
  const inner = await startS3rverOnSocket(args[0], buckets, args[4]);
  const proxy = await startS3AuthProxy({ port: args[1], upstreamSocket: args[4], creds }).catch(async (err: unknown) => {
    await inner.stop();
    throw err;
  });
  return { endpoint: `http://127.0.0.1:${proxy.port}`, stop: () => proxy.close().finally(() => inner.stop()) };
};
const s3 = await start().catch(fail);
started = true;

let stopping = false;
/** Closes the server and leaves; the parent going away (IPC closed) counts as a stop too. */
const stop = () => {
  if (stopping) return;
  stopping = true;
  s3.stop().finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.on("disconnect", stop);
process.send!({ ready: s3.endpoint });
