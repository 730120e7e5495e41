import { startStack, type Stack } from "@barge/devstack";

/** `barge dev` / `pnpm start`: the embedded stack until Ctrl-C, with how to reach it. */
export async function dev(): Promise<void> {
  // This stack keeps its data across runs, so its PostgreSQL fsyncs.
  const stack = await startStack({ durable: true });
  printBanner(stack);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = () => {
      if (stopping) process.exit(1);
      stopping = true;
      console.log("\nstopping…");
      stack.stop().then(resolve, resolve);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}

function printBanner(s: Stack): void {
  const c = s.config;
  const tag = (embedded: boolean) => (embedded ? "embedded" : "external");
  // The shell expands the variable: the banner never prints the key itself.
  const auth = c.BARGE_API_KEY ? ' -H "Authorization: Bearer $BARGE_API_KEY"' : "";
  console.log(`Barge is running (Ctrl-C to stop). Data: ${c.BARGE_DATA_DIR}/
  API          ${s.apiUrl}
  Dashboard    ${s.apiUrl}/
  Postgres     ${tag(s.embedded.postgres)} ${c.DATABASE_URL}
  S3           ${tag(s.embedded.s3)} ${s.s3Endpoint}  bucket=${c.S3_BUCKET}
               ${c.S3_ACCESS_KEY_ID ? `S3_ACCESS_KEY_ID=${c.S3_ACCESS_KEY_ID} S3_SECRET_ACCESS_KEY=${c.S3_SECRET_ACCESS_KEY}` : "credentials from the AWS SDK's default chain"}${s.s3CredentialsFile ? embeddedS3Hint(s, s.s3CredentialsFile) : ""}
  Engine       ${s.embedded.engine ? "engine-sim (simulated, not a model)" : "external"} ${s.engineUrl}

Try it:
  curl -s ${s.apiUrl}/v1/files${auth} -F purpose=batch -F file=@examples/chat.jsonl
  curl -s ${s.apiUrl}/v1/batches${auth} -H 'content-type: application/json' \\
    -d '{"input_file_id":"<file id>","endpoint":"/v1/chat/completions","completion_window":"24h"}'
  curl -s ${s.apiUrl}/v1/batches/<batch id>${auth}
or in one step:
  curl -s ${s.apiUrl}/v1/batches${auth} -F file=@examples/chat.jsonl -F model=barge-sim-1
or with the CLI:
  BARGE_API_URL=${s.apiUrl} pnpm barge submit examples/chat.jsonl --wait --out results.jsonl`);
}

/** How to reach the embedded S3 with the `aws` CLI: it answers only requests signed with the data dir's keys. */
function embeddedS3Hint(s: Stack, file: string): string {
  return `
               signed requests only; keys in ${file}:
               eval "$(pnpm -s barge s3-env)"; aws --endpoint-url ${s.s3Endpoint} s3 ls s3://${s.config.S3_BUCKET}/`;
}
