import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { CreateMultipartUploadCommand, UploadPartCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, expect, it } from "vitest";
import { sweepStaleMultipartUploads } from "@barge/api";
import { startTestApi, type TestApi } from "../support/api-harness.js";
import { testLog } from "../support/context.js";
import { fileForm, slowPost } from "../support/slow-client.js";
import { describeStrict, listUploads, MiB, waitFor } from "./helpers.js";

// An upload that does not finish must not leave its S3 multipart upload (and its parts' storage)
// behind: not when the client stalls, not when it hangs up, not when the API crashed mid-upload.
// Only a strict S3 lists multipart uploads (s3rver answers NotImplemented), hence this suite.

/** Big enough that the API streams it to S3 as a multipart upload (parts of 5 MiB). */
const content = randomBytes(8 * MiB);

let stalls: TestApi;
let patient: TestApi;
beforeAll(async () => {
  [stalls, patient] = await Promise.all([startTestApi({ UPLOAD_IDLE_TIMEOUT_SECONDS: "3" }), startTestApi()]);
});
afterAll(async () => {
  await Promise.all([stalls?.close(), patient?.close()]);
});

const open = (t: TestApi, prefix: string) => listUploads(t.ctx.s3, t.ctx.bucket, prefix);
/** Waits until the API has a multipart upload open under `prefix`, so the test is not vacuous. */
const opened = (t: TestApi, prefix: string) => waitFor(`a multipart upload under ${prefix}`, async () => ((await open(t, prefix)).length > 0 ? true : undefined), 30_000);
const allGone = (t: TestApi, prefix: string) => waitFor(`no multipart upload under ${prefix}`, async () => ((await open(t, prefix)).length === 0 ? true : undefined), 30_000);

describeStrict("unfinished uploads abort their multipart uploads", () => {
  it("a POST /v1/files that stops sending gets 408 and its multipart upload is aborted", async () => {
    const answer = slowPost(stalls.url, "/v1/files", fileForm(content), { pieces: 8, pauseMs: 50, sendPieces: 7 });
    await opened(stalls, "inputs/default/");
    const res = await answer;
    expect(res.status).toBe(408);
    expect(res.text).toContain('"code":"request_timeout"');
    await allGone(stalls, "inputs/default/");
    expect(await stalls.ctx.db.selectFrom("files").select("id").execute()).toEqual([]);
  });

  it("a client that hangs up mid-upload leaves no multipart upload, on POST /v1/files and on upload parts", async () => {
    await slowPost(patient.url, "/v1/files", fileForm(content), { pieces: 8, pauseMs: 50, sendPieces: 7, hangUp: () => opened(patient, "inputs/default/") });
    await allGone(patient, "inputs/default/");

    const upload = await patient.client.uploads.create({ bytes: content.length, filename: "p.jsonl", mime_type: "application/jsonl", purpose: "batch" });
    const form = fileForm(content);
    const body = Buffer.from(form.body.toString("latin1").replace('name="file"', 'name="data"'), "latin1");
    const prefix = `uploads/default/${upload.id}/`;
    await slowPost(patient.url, `/v1/uploads/${upload.id}/parts`, { ...form, body }, { pieces: 8, pauseMs: 50, sendPieces: 7, hangUp: () => opened(patient, prefix) });
    await allGone(patient, prefix);
    expect(await patient.ctx.db.selectFrom("upload_parts").select("id").where("upload_id", "=", upload.id).execute()).toEqual([]);
  });

  it("the sweeper aborts multipart uploads a crash left open under the upload prefixes, once they are stale", async () => {
    const { s3, bucket } = patient.ctx;
    const start = async (key: string) => {
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: randomBytes(1024) }));
      return `${key}:${UploadId}`;
    };
    const oldInput = await start("inputs/default/crashed.jsonl");
    const oldPart = await start("uploads/default/upload_x/00001.part");
    const oldOutput = await start("outputs/default/batch_x/output.jsonl");
    // Initiated has whole seconds on some servers: the young upload is started well after the old ones.
    await sleep(3000);
    const young = await start("inputs/default/young.jsonl");

    const deps = { db: patient.ctx.db, s3, bucket, log: testLog };
    expect(await sweepStaleMultipartUploads(deps, 1.5 / 3600)).toBe(2);
    const left = await open(patient, "");
    expect(left).toContain(young);
    expect(left).toContain(oldOutput);
    expect(left).not.toContain(oldInput);
    expect(left).not.toContain(oldPart);
    // With the default of a day, nothing here is stale.
    expect(await sweepStaleMultipartUploads(deps, 24)).toBe(0);
  });
});
