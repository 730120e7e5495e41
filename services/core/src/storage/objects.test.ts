import { describe, expect, it } from "vitest";
import { createS3Client } from "./s3.js";
import { presignPut } from "./objects.js";

// Presigning is computed locally, so no server is needed to see what the URL signs; that S3
// holds a PUT to it is shown on Ceph RGW in test/conformance/presign.test.ts.
describe("presignPut", () => {
  it("signs Content-Length with the declared size", async () => {
    const s3 = createS3Client({ endpoint: "http://127.0.0.1:1", region: "us-east-1", accessKeyId: "k", secretAccessKey: "s", forcePathStyle: true });
    const url = new URL(await presignPut({ s3, bucket: "b" }, "staging/t/f.jsonl", 60, 1234));
    expect(url.searchParams.get("X-Amz-SignedHeaders")?.split(";")).toEqual(["content-length", "host"]);
    // Not hoisted into the query, where a client could leave it out.
    expect([...url.searchParams.keys()].map((k) => k.toLowerCase())).not.toContain("content-length");
  });
});
