import { Hono } from "hono";
import { Readable } from "node:stream";
import { committedOutputPrefix, isActiveBatchStatus, isPublishedBatchStatus, keys, NotFound, readConcatenation, type BatchRow } from "@barge/core";
import { tenantOf } from "../auth.js";
import type { ApiDeps, AppEnv } from "../deps.js";
import { objectResponse, requestedRange, webBody } from "../object-response.js";
import { knownId } from "../params.js";
import { findBatch } from "../store/batches.js";
import { findVisibleFile } from "../store/files.js";

/**
 * `GET /v1/batches/{id}/results`: the batch's output lines, streamed from S3 as NDJSON. A
 * published batch answers with its output object (byte ranges as `/v1/files/{id}/content`); a
 * batch not final yet (active) with the results committed so far, an in-order prefix of that
 * output, marked `x-barge-partial: true`. The prefix only grows and its bytes never change, so a
 * range of it is answered too (`Content-Range: bytes a-b/*`): `bytes=<held>-` fetches just the
 * results committed since. A failed batch, which never ran, has no results: 404.
 */
export function batchResultsRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();

  app.get("/:id/results", async (c) => {
    const tenant = tenantOf(c);
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
    if (!isActiveBatchStatus(batch.status)) return published(batch);

    const prefix = await committedOutputPrefix(deps.db, batch.id);
    if (!prefix) throw new NotFound("batch", id, "batch_id");
    // Published since the row was read: the list would be of deleted segments.
    if (!isActiveBatchStatus(prefix.status)) return published((await findBatch(deps.db, tenant, batch.id)) ?? batch);
    const partial = { ...headers, "accept-ranges": "bytes", "x-barge-partial": "true" };
    const size = prefix.segments.reduce((n, s) => n + s.size, 0);
    const asked = requestedRange(size, c.req.header("range"));
    if (asked === "unsatisfiable") return new Response(null, { status: 416, headers: { ...partial, "content-range": `bytes */${size}` } });
    const window = asked ? { start: asked.start, end: asked.end + 1 } : { start: 0, end: size };
    const body = Readable.from(readConcatenation(deps, prefix.segments, keys.output(batch.tenant, batch.id, batch.results_prefix), window), { objectMode: false });
    // No Content-Length: should the segments and the output both vanish meanwhile, the body ends early, yet cleanly.
    // The complete length is unknown while the batch runs (`/*`), but the prefix's bytes never change.
    return asked
      ? new Response(webBody(body), { status: 206, headers: { ...partial, "content-range": `bytes ${asked.start}-${asked.end}/*` } })
      : new Response(webBody(body), { headers: partial });
  });

  return app;
}

/** The published output of a batch, or undefined when it has none (failed) or it was deleted or expired. */
async function publishedResults(deps: ApiDeps, tenant: string, batch: BatchRow, range: string | undefined, headers: Record<string, string>): Promise<Response | undefined> {
  if (!isPublishedBatchStatus(batch.status) || !batch.output_file_id) return undefined;
  const file = await findVisibleFile(deps.db, tenant, batch.output_file_id);
  return file ? objectResponse(deps, file.s3_key, range, headers) : undefined;
}
