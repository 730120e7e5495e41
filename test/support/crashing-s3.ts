import { createS3Client, s3Settings, type Config } from "@barge/core";
import type { S3Client } from "@aws-sdk/client-s3";

/**
 * An S3 client on the suite's server that fails one kind of command, as if its process died
 * right before sending it: a finalizer given this client stops at exactly that step.
 */
export function crashingS3(config: Config, commandName: string): S3Client {
  const s3 = createS3Client(s3Settings(config));
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === commandName) throw new Error(`simulated crash before ${commandName}`);
      return next(args);
    },
    { step: "initialize", name: "barge-test-crash" },
  );
  return s3;
}
