import { startEmbeddedS3 } from "@barge/devstack";

// s3rver in a process of its own, so its CPU and memory stay out of the benchmark runner:
//   node --import tsx test/bench/procs/s3rver.ts <dir> <port> <bucket>
const [dir, port, bucket] = process.argv.slice(2);
if (!dir || !port || !bucket) {
  process.stderr.write("usage: s3rver.ts <dir> <port> <bucket>\n");
  process.exit(2);
}
const s3 = await startEmbeddedS3(dir, [bucket], { port: Number(port) });
process.stdout.write(`s3rver listening on ${s3.endpoint}\n`);
const stop = () => {
  void s3.stop().finally(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
