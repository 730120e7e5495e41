import { Hono } from "hono";
import { Readable } from "node:stream";
import { committedOutputPrefix, isPublishedBatchStatus, keys, NotFound, readConcatenation, type BatchRow } from "@barge/core";
import type { ApiDeps, AppEnv } from "../deps.js";
import { objectResponse, webBody } from "../object-response.js";
import { knownId } from "../params.js";
import { findBatch } from "../store/batches.js";
import { findVisibleFile } from "../store/files.js";

/** The statuses in which `/results` answers with the results committed so far. */
const RUNNING = new Set(["validating", "in_progress", "finalizing", "cancelling"]);

/**
 * `GET /v1/batches/{id}/results`: the batch's output lines, streamed from S3 as NDJSON. A
 * published batch answers with its output object (byte ranges as `/v1/files/{id}/content`); a
 * running one with the results committed so far, an in-order prefix of that output, marked
 * `x-barge-partial: true` (whole: a range of a moving prefix would not name stable bytes, so
 * `Range` is ignored there). A failed batch, which never ran, has no results: 404.
 */
export function batchResultsRoutes(deps: ApiDeps) {
  const tenant = deps.config.BARGE_TENANT;
  const app = new Hono<AppEnv>();

  app.get("/:id/results", async (c) => {
    const id = knownId(c.req.param("id"), "batch_", "batch", "batch_id");
    const batch = await findBatch(deps.db, tenant, id);
    if (!batch) throw new NotFound("batch", id, "batch_id");
    const headers = {
      "content-type": "application/x-ndjson",
      "content-disposition": `attachment; filename="${batch.id}_results.jsonl"`,
    };
    const published = async (row: BatchRow) => {
      const answer = await publishedResults(deps, tenant, row, c.req.header("range"), headers);
      if (!answer) throw new NotFound("batch results", id, "batch_id");
      return answer;
    };
    if (!RUNNING.has(batch.status)) return published(batch);

    const prefix = await committedOutputPrefix(deps.db, batch.id);
    if (!prefix) throw new NotFound("batch", id, "batch_id");
    // Published since the row was read: the list would be of deleted segments.
    if (!RUNNING.has(prefix.status)) return published((await findBatch(deps.db, tenant, batch.id)) ?? batch);
    const body = Readable.from(readConcatenation(deps, prefix.segments, keys.output(batch.tenant, batch.id)), { objectMode: false });
    // No Content-Length: should the segments and the output both vanish meanwhile, the body ends early, yet cleanly.
    return new Response(webBody(body), { headers: { ...headers, "accept-ranges": "none", "x-barge-partial": "true" } });
  });

  return app;
}

/** The published output of a batch, or undefined when it has none (failed) or it was deleted or expired. */
async function publishedResults(deps: ApiDeps, tenant: string, batch: BatchRow, range: string | undefined, headers: Record<string, string>): Promise<Response | undefined> {
  if (!isPublishedBatchStatus(batch.status) || !batch.output_file_id) return undefined;
  const file = await findVisibleFile(deps.db, tenant, batch.output_file_id);
  return file ? objectResponse(deps, file.s3_key, range, headers) : undefined;
}
