import type { BatchRow, ChunkRow } from "@barge/core";
import type { TestContext } from "./context.js";
import { readObject } from "./seed.js";

/** One line of a batch's output or error file. */
export interface ResultLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: Record<string, unknown> } | null;
  error: { code: string; message: string } | null;
}

/** Parses JSONL text. */
export function parseJsonl<T = ResultLine>(text: string): T[] {
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as T);
}

/** A batch row. */
export function batchRow(ctx: TestContext, id: string): Promise<BatchRow> {
  return ctx.db.selectFrom("batches").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
}

/** A batch's chunks in order. */
export function chunkRows(ctx: TestContext, batchId: string): Promise<ChunkRow[]> {
  return ctx.db.selectFrom("chunks").selectAll().where("batch_id", "=", batchId).orderBy("idx").execute();
}

/** Requests committed so far, summed over the chunk checkpoints. */
export async function committedCount(ctx: TestContext, batchId: string): Promise<number> {
  return (await chunkRows(ctx, batchId)).reduce((n, c) => n + c.committed, 0);
}

/** The request indexes committed so far, from the chunk checkpoints (each chunk's prefix). */
export async function committedIndexes(ctx: TestContext, batchId: string): Promise<Set<number>> {
  const out = new Set<number>();
  for (const c of await chunkRows(ctx, batchId)) for (let k = 0; k < c.committed; k++) out.add(c.request_start + k);
  return out;
}

/** The stitched output and error lines of a finished batch (an absent error file is no lines). */
export async function readResults(ctx: TestContext, batch: BatchRow): Promise<{ output: ResultLine[]; errors: ResultLine[] }> {
  if (!batch.output_key) throw new Error(`batch ${batch.id} has no output`);
  return {
    output: parseJsonl(await readObject(ctx, batch.output_key)),
    errors: batch.error_key ? parseJsonl(await readObject(ctx, batch.error_key)) : [],
  };
}

/** Where each custom_id stands in the input, for "in input order" checks. */
export function inputOrder(customIds: readonly string[]): (id: string) => number {
  const at = new Map(customIds.map((id, i) => [id, i]));
  return (id) => {
    const i = at.get(id);
    if (i === undefined) throw new Error(`custom_id ${id} is not in the input`);
    return i;
  };
}

/** The request index in a response's `request_id` (`<batch>:<index>`). */
export const requestIndexOf = (requestId: string | null | undefined): number => Number((requestId ?? "").split(":")[1]);

/** A result line without what legitimately differs between two runs of the same input: line ids, timestamps, batch ids. */
export function normalized(line: ResultLine): unknown {
  const { id: _id, ...rest } = line;
  if (!rest.response) return rest;
  const { created: _created, ...body } = rest.response.body;
  return { ...rest, response: { ...rest.response, request_id: requestIndexOf(rest.response.request_id), body } };
}
