// Entry of the embedded S3's own process. s3rver parses whatever reaches its port; run here, a
// crash in it (or in its parsers) ends only this process, which the stack's supervisor restarts.
// argv: <directory> <port> <buckets as JSON>. Tells the parent `{ ready: endpoint }` over IPC.
import { z } from "zod";
import { startEmbeddedS3 } from "./s3.js";

const args = z.tuple([z.string().min(1), z.coerce.number().int().min(1).max(65535), z.string()]).parse(process.argv.slice(2));
const buckets = z.array(z.string().min(1)).parse(JSON.parse(args[2]));
let started = false;
/** Ends the process on any failure with one line (not a stack trace), which the parent quotes or logs. */
const fail = (err: unknown) => {
  const why = err instanceof Error ? err.message : String(err);
  process.stderr.write(`embedded S3 ${started ? "crashed" : "could not start"}: ${why}\n`);
  process.exit(1);
};
process.on("uncaughtException", fail);
const s3 = await startEmbeddedS3(args[0], buckets, { port: args[1] }).catch(fail);
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
