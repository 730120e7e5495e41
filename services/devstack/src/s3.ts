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
  const port = opts.port ?? (await freePort());
  const server = await runS3rver(dir, buckets, port);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: S3RVER_KEY,
    secretAccessKey: S3RVER_KEY,
    stop: () => server.close(),
  };
}

/** s3rver's one built-in key; any request naming it in a V4 Authorization header counts as its account. */
export const S3RVER_KEY = "S3RVER";

/**
 * Starts s3rver on a Unix socket, for the embedded stack's proxy alone: unlike a loopback port,
 * nothing else on the machine can reach it when the socket's directory is owner-only.
 */
export async function startS3rverOnSocket(dir: string, buckets: string[], socketPath: string): Promise<{ stop(): Promise<void> }> {
  const server = await runS3rver(dir, buckets, socketPath);
  return { stop: () => server.close() };
}

/**
 * The buckets' CORS rules: a browser page (the dashboard, on whatever port the API has) may PUT to
 * a presigned URL and GET a presigned result. Any origin, since the presigned URL is the credential
 * and the server listens on loopback only.
 */
export const BROWSER_UPLOADS_CORS =
  "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod>" +
  "<AllowedMethod>HEAD</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule></CORSConfiguration>";

async function runS3rver(dir: string, buckets: string[], listenOn: number | string): Promise<S3rver> {
  mkdirSync(dir, { recursive: true });
  const server = new S3rver({
    // A socket path in `port` goes to server.listen(path), which s3rver passes through.
    ...(typeof listenOn === "number" ? { address: "127.0.0.1", port: listenOn } : { port: listenOn as unknown as number }),
    directory: dir,
    silent: true,
    configureBuckets: buckets.map((name) => ({ name, configs: [BROWSER_UPLOADS_CORS] })),
  });
  await server.run();
  return server;
}
