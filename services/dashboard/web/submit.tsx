import { useState } from "preact/hooks";
import { ApiError, call, json } from "./api.js";
import type { Batch } from "./types.js";

const ENDPOINTS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"] as const;

interface Presigned {
  id: string;
  upload_url: string;
}

/** What went wrong, by line where the API names one. */
type Problem = { message: string; lines: { line: number | null; message: string }[] };

/** Straight to S3 with a presigned PUT; false when the bucket's CORS (or the network) refuses the browser. */
async function putToS3(file: File): Promise<string | false> {
  const p = await json<Presigned>("/v1/files/presign", "POST", { filename: file.name, purpose: "batch", bytes: file.size });
  try {
    const r = await fetch(p.upload_url, { method: "PUT", body: file });
    if (!r.ok) return false;
  } catch {
    return false;
  }
  await json(`/v1/files/${p.id}/complete`, "POST");
  return p.id;
}

/** Polls a new batch until validation has decided, so refusals show here with their lines. */
async function validated(id: string): Promise<Batch> {
  for (;;) {
    const b = await json<Batch>(`/v1/batches/${id}`);
    if (b.status !== "validating") return b;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Choose or drop a .jsonl file, optionally override the model, and submit it as a batch. */
export function Submit({ go }: { go: (hash: string) => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [model, setModel] = useState("");
  const [endpoint, setEndpoint] = useState<string>(ENDPOINTS[0]);
  const [busy, setBusy] = useState<string | undefined>();
  const [problem, setProblem] = useState<Problem | undefined>();
  const [over, setOver] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!file) return setProblem({ message: "Choose a .jsonl file first.", lines: [] });
    setProblem(undefined);
    try {
      setBusy("Uploading to S3…");
      const fileId = await putToS3(file);
      let batch: Batch;
      if (fileId) {
        setBusy("Creating the batch…");
        batch = await json<Batch>("/v1/batches", "POST", { input_file_id: fileId, endpoint, completion_window: "24h", ...(model ? { model } : {}) });
      } else {
        // The bucket does not let this page PUT to it: the API streams the file through instead.
        setBusy("Uploading through the API…");
        const form = new FormData();
        form.set("endpoint", endpoint);
        if (model) form.set("model", model);
        form.set("file", file, file.name);
        batch = (await (await call("/v1/batches", { method: "POST", body: form })).json()) as Batch;
      }
      setBusy("Validating…");
      const checked = await validated(batch.id);
      if (checked.status === "failed") {
        setProblem({
          message: `The file was refused (batch ${checked.id}).`,
          lines: (checked.errors?.data ?? []).map((x) => ({ line: x.line, message: x.message })),
        });
        return;
      }
      go(`#/batches/${batch.id}`);
    } catch (err) {
      // The API names a refused file's line in its message, as "Line N: why".
      const message = err instanceof Error ? err.message : String(err);
      const byLine = err instanceof ApiError ? /^Line (\d+): ([\s\S]*)$/.exec(message) : null;
      setProblem(byLine ? { message: "The file was refused.", lines: [{ line: Number(byLine[1]), message: byLine[2]! }] } : { message, lines: [] });
    } finally {
      setBusy(undefined);
    }
  };

  return (
    <section aria-labelledby="submit-title">
      <h1 id="submit-title">Submit a batch</h1>
      <form onSubmit={(e) => void submit(e)}>
        <div
          class={`drop${over ? " over" : ""}`}
          onDragOver={(e) => (e.preventDefault(), setOver(true))}
          onDragLeave={() => setOver(false)}
          onDrop={(e) => {
            e.preventDefault();
            setOver(false);
            const f = e.dataTransfer?.files[0];
            if (f) setFile(f);
          }}
        >
          <label for="file">Requests file (.jsonl)</label>
          <input id="file" type="file" accept=".jsonl,application/jsonl,application/x-ndjson" onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} />
          <p>{file ? `${file.name}, ${file.size.toLocaleString("en")} bytes` : "or drop a file here"}</p>
        </div>
        <p>
          <label for="model">Model (optional: replaces each line's model)</label>
          <input id="model" type="text" value={model} onInput={(e) => setModel(e.currentTarget.value)} autoComplete="off" />
        </p>
        <p>
          <label for="endpoint">Endpoint</label>
          <select id="endpoint" value={endpoint} onChange={(e) => setEndpoint(e.currentTarget.value)}>
            {ENDPOINTS.map((x) => (
              <option value={x}>{x}</option>
            ))}
          </select>
        </p>
        <button type="submit" disabled={busy !== undefined}>
          Submit
        </button>
        {busy && <p role="status">{busy}</p>}
      </form>
      {problem && (
        <div role="alert" class="error">
          <p>{problem.message}</p>
          {problem.lines.length > 0 && (
            <ul class="line-errors">
              {problem.lines.map((l) => (
                <li>{l.line === null ? l.message : `Line ${l.line}: ${l.message}`}</li>
              ))}
            </ul>
          )}
        </div>
      )}
    </section>
  );
}
