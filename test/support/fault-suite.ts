import { startApi, type ApiServer } from "@barge/api";
import { createS3Client, s3Settings, type Bucket } from "@barge/core";
import { testLog, type TestContext } from "./context.js";
import { Children } from "./processes.js";
import { suiteResources, type SuiteResources } from "./suite-resources.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

/** A fault suite's prologue: child processes and in-process services, all gone after each test. */
export interface FaultSuite extends SuiteResources {
  /** Agent and engine-sim processes; killed after each test, before the cleanups run. */
  children: Children;
  /** The full API in this process on `ctx`, on port 0; `s3` replaces the context's client (a proxied one, say). */
  api(ctx: TestContext, s3?: Bucket["s3"]): Promise<ApiServer>;
  /** The context's S3 behind a proxy the test can take down, and an S3 client that goes through it. */
  s3Proxy(ctx: TestContext): Promise<{ proxy: TcpProxy; s3: Bucket["s3"] }>;
}

/** Opens a fault suite: call once inside its `describe`, where it registers its own afterEach. */
export function faultSuite(): FaultSuite {
  const children = new Children();
  const resources = suiteResources(() => children.stopAll());
  return {
    ...resources,
    children,
    async api(ctx, s3 = ctx.s3) {
      const api = await startApi({ db: ctx.db, s3, bucket: ctx.bucket, config: ctx.config, log: testLog, host: "127.0.0.1", port: 0 });
      resources.cleanup(() => api.close());
      return api;
    },
    async s3Proxy(ctx) {
      const proxy = await startTcpProxy(ctx.config.S3_ENDPOINT!);
      resources.cleanup(() => proxy.close());
      const s3 = createS3Client({ ...s3Settings(ctx.config), endpoint: proxy.url });
      resources.cleanup(async () => s3.destroy());
      return { proxy, s3 };
    },
  };
}
