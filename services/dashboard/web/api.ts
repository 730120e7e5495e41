// The page's one way to the API: the signed-in key goes in an Authorization header, never a URL.
const KEY = "barge.apiKey";

/** The key this tab signed in with (sessionStorage: gone when the tab closes). */
export const storedKey = (): string | null => sessionStorage.getItem(KEY);
export const storeKey = (key: string | null): void => (key === null ? sessionStorage.removeItem(KEY) : sessionStorage.setItem(KEY, key));

/** An API error with OpenAI's body: its message, and `param` (often a line number) when given. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null,
    readonly code: string | null,
  ) {
    super(message);
  }
}

const headers = (extra?: HeadersInit): Headers => {
  const h = new Headers(extra);
  const key = storedKey();
  if (key) h.set("authorization", `Bearer ${key}`);
  return h;
};

/** A fetch of an API path with the key; a non-2xx answer becomes an ApiError. */
export async function call(path: string, init: RequestInit = {}): Promise<Response> {
  const r = await fetch(path, { ...init, headers: headers(init.headers) });
  if (!r.ok) {
    const body = (await r.json().catch(() => null)) as { error?: { message?: string; param?: string; code?: string } } | null;
    throw new ApiError(r.status, body?.error?.message ?? `HTTP ${r.status}`, body?.error?.param ?? null, body?.error?.code ?? null);
  }
  return r;
}

/** GET (or another method with a JSON body) answering JSON. */
export async function json<T>(path: string, method = "GET", body?: unknown): Promise<T> {
  const init: RequestInit = { method };
  if (body !== undefined) Object.assign(init, { body: JSON.stringify(body), headers: { "content-type": "application/json" } });
  return (await call(path, init)).json() as Promise<T>;
}

/** Saves what an API path answers as a file; fetched with the key, so no secret goes into a link. */
export async function download(path: string, filename: string): Promise<void> {
  const blob = await (await call(path)).blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
