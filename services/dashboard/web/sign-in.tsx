import { useState } from "preact/hooks";
import { json, storeKey } from "./api.js";
import type { Session } from "./types.js";

/** Asks for an API key and keeps it for this tab once the API knows it. */
export function SignIn({ onSession }: { onSession: (s: Session) => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | undefined>();
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    storeKey(key.trim());
    const s = await json<Session>("/ui/session").catch(() => undefined);
    if (!s || s.principal === "anonymous") {
      storeKey(null);
      return setError("That key is not valid here.");
    }
    setKey("");
    onSession(s);
  };
  return (
    <section aria-labelledby="signin-title" class="signin">
      <h1 id="signin-title">Sign in</h1>
      <p>This server needs an API key: a tenant's key, or the admin key. It stays in this tab only.</p>
      <form onSubmit={(e) => void submit(e)}>
        <label for="api-key">API key</label>
        <input id="api-key" type="password" autoComplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} required />
        <button type="submit">Sign in</button>
      </form>
      {error && <p role="alert" class="error">{error}</p>}
    </section>
  );
}
