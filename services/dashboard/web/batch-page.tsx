import { useState } from "preact/hooks";
import { ApiError, download, json } from "./api.js";
import { eta, num, time } from "./format.js";
import { usePoll } from "./poll.js";
import { BatchProgress } from "./progress.js";
import { CANCELLABLE, FINAL, type Batch, type BatchEvent, type List, type RequestError } from "./types.js";

const ERRORS_PAGE = 20;

/** A link that downloads an API path with the signed-in key; `href` names the path for people and tests. */
function DownloadLink({ path, filename, children }: { path: string; filename: string; children: string }) {
  const [error, setError] = useState<string | undefined>();
  return (
    <>
      <a
        href={path}
        download={filename}
        onClick={(e) => {
          e.preventDefault();
          setError(undefined);
          download(path, filename).catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)));
        }}
      >
        {children}
      </a>
      {error && <span role="alert" class="error"> {error}</span>}
    </>
  );
}

/** One batch: its state, downloads, controls, timeline and failed requests. */
export function BatchPage({ id, go }: { id: string; go: (hash: string) => void }) {
  const batch = usePoll(() => json<Batch>(`/v1/batches/${id}`), 2000, [id]);
  const logs = usePoll(() => json<List<BatchEvent>>(`/v1/batches/${id}/logs?limit=1000`), 4000, [id]);
  const [cursors, setCursors] = useState<string[]>([]);
  const after = cursors[cursors.length - 1];
  const errors = usePoll(() => json<List<RequestError>>(`/v1/batches/${id}/errors?limit=${ERRORS_PAGE}${after ? `&after=${encodeURIComponent(after)}` : ""}`), 5000, [id, after]);
  const [notice, setNotice] = useState<string | undefined>();
  const b = batch.data;
  const act = async (what: "cancel" | "retry") => {
    setNotice(undefined);
    try {
      const r = await json<Batch>(`/v1/batches/${id}/${what}`, "POST");
      if (what === "retry") go(`#/batches/${r.id}`);
      else batch.refresh();
    } catch (err) {
      setNotice(err instanceof ApiError || err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <section aria-labelledby="batch-title">
      <h1 id="batch-title">
        Batch <code>{id}</code>
      </h1>
      {batch.error && <p role="alert" class="error">{batch.error}</p>}
      {b && (
        <>
          <dl class="stats">
            <div>
              <dt>Status</dt>
              <dd data-testid="batch-status">{b.paused ? "paused" : b.status}</dd>
            </div>
            <div>
              <dt>Progress</dt>
              <dd>
                <BatchProgress b={b} />
              </dd>
            </div>
            <div>
              <dt>Completed</dt>
              <dd>{num(b.request_counts.completed)} of {num(b.request_counts.total)}</dd>
            </div>
            <div>
              <dt>Failed</dt>
              <dd>{num(b.request_counts.failed)}</dd>
            </div>
            <div>
              <dt>Tokens/s</dt>
              <dd>{num(b.throughput_tokens_per_sec, 1)}</dd>
            </div>
            <div>
              <dt>ETA</dt>
              <dd>{eta(b.estimated_completion)}</dd>
            </div>
          </dl>
          <p class="actions">
            {b.output_file_id && (
              <DownloadLink path={`/v1/files/${b.output_file_id}/content`} filename={`${id}-output.jsonl`}>
                Download results
              </DownloadLink>
            )}
            {b.error_file_id && (
              <DownloadLink path={`/v1/files/${b.error_file_id}/content`} filename={`${id}-errors.jsonl`}>
                Download errors
              </DownloadLink>
            )}
            {!FINAL.has(b.status) && b.status !== "validating" && (
              <DownloadLink path={`/v1/batches/${id}/results`} filename={`${id}-partial.jsonl`}>
                Download partial results
              </DownloadLink>
            )}
            <button type="button" disabled={!CANCELLABLE.has(b.status)} onClick={() => void act("cancel")}>
              Cancel
            </button>
            <button type="button" disabled={!FINAL.has(b.status) || b.status === "failed" || b.request_counts.failed === 0} onClick={() => void act("retry")}>
              Retry failed
            </button>
          </p>
          {notice && <p role="alert" class="error">{notice}</p>}
          {b.errors && (
            <>
              <h2>Validation errors</h2>
              <ul class="line-errors">
                {b.errors.data.map((e) => (
                  <li>{e.line === null ? e.message : `Line ${e.line}: ${e.message}`}</li>
                ))}
              </ul>
            </>
          )}
        </>
      )}
      <h2>Timeline</h2>
      <ol class="timeline">
        {(logs.data?.data ?? []).map((e) => (
          <li key={e.id}>
            <time>{time(e.created_at)}</time> <strong>{e.kind}</strong> <code>{JSON.stringify(e.data)}</code>
          </li>
        ))}
      </ol>
      <h2>Failed requests</h2>
      <table>
        <caption class="sr-only">Failed requests</caption>
        <thead>
          <tr>
            <th scope="col">custom_id</th>
            <th scope="col">Line</th>
            <th scope="col">Code</th>
            <th scope="col">Message</th>
            <th scope="col">Attempts</th>
          </tr>
        </thead>
        <tbody>
          {errors.data && errors.data.data.length === 0 && (
            <tr>
              <td colSpan={5}>None.</td>
            </tr>
          )}
          {(errors.data?.data ?? []).map((e) => (
            <tr key={e.custom_id}>
              <td>
                <code>{e.custom_id}</code>
              </td>
              <td>{num(e.line)}</td>
              <td>{e.code}</td>
              <td>{e.message}</td>
              <td>{e.attempts}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="pager">
        <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous errors
        </button>
        <button type="button" disabled={!errors.data?.has_more} onClick={() => errors.data?.last_id && setCursors([...cursors, errors.data.last_id])}>
          Next errors
        </button>
      </p>
    </section>
  );
}
