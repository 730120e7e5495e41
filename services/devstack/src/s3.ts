import S3rver from "s3rver";
import { mkdirSync } from "node:fs";
import { freePort } from "./ports.js";

/** A running in-process S3 server (s3rver) for the embedded stack. */
export interface EmbeddedS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
}

/**
 * Starts s3rver on a free loopback port, storing objects under `dir`. It speaks real S3 over
 * HTTP but checks no SigV4 signatures (its fixed key is S3RVER/S3RVER), so the conformance suite
 * runs on RGW and the embedded stack puts it behind the verifying proxy (s3-auth-proxy.ts).
 */
export async function startEmbeddedS3(dir: string, buckets: string[], opts: { port?: number } = {}): Promise<EmbeddedS3> {
  mkdirSync(dir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const server = new S3rver({
    address: "127.0.0.1",
    port,
    directory: dir,
    silent: true,
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
  });
  await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
    stop: () => server.close(),
  };
}
