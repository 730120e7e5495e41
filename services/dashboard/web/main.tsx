import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { json, storeKey } from "./api.js";
import { BatchPage } from "./batch-page.js";
import { Batches } from "./batches.js";
import { Overview } from "./overview.js";
import { SignIn } from "./sign-in.js";
import { Submit } from "./submit.js";
import type { Session } from "./types.js";
import { Usage } from "./usage.js";

const useHash = (): [string, (h: string) => void] => {
  const [hash, setHash] = useState(location.hash || "#/");
  useEffect(() => {
    const on = () => setHash(location.hash || "#/");
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return [hash, (h: string) => void (location.hash = h)];
};

/** The page for a route of a signed-in (or open) session. */
function Page({ hash, session, go }: { hash: string; session: Session; go: (h: string) => void }) {
  const batch = /^#\/batches\/(batch_[\w-]+)$/.exec(hash);
  const tenant = session.principal === "tenant";
  if (batch && tenant) return <BatchPage id={batch[1]!} go={go} />;
  if (hash === "#/batches" && tenant) return <Batches />;
  if (hash === "#/submit" && tenant) return <Submit go={go} />;
  if (hash === "#/usage" && session.principal === "admin") return <Usage />;
  return <Overview session={session} />;
}

function App() {
  const [session, setSession] = useState<Session | undefined>();
  const [hash, go] = useHash();
  useEffect(() => void json<Session>("/ui/session").then(setSession), []);
  if (!session) return <p role="status">Loading…</p>;
  const signedIn = session.auth === "open" || session.principal !== "anonymous";
  const link = (to: string, label: string) => (
    <a href={to} aria-current={hash === to ? "page" : undefined}>
      {label}
    </a>
  );
  return (
    <>
      <header>
        <span class="brand">Barge</span>
        {signedIn && (
          <nav aria-label="Main">
            {link("#/", "Overview")}
            {session.principal === "tenant" && link("#/batches", "Batches")}
            {session.principal === "tenant" && link("#/submit", "Submit")}
            {session.principal === "admin" && link("#/usage", "Usage")}
          </nav>
        )}
        {session.auth === "required" && signedIn && (
          <span class="who">
            {session.principal === "admin" ? "admin" : `tenant ${session.tenant}`}{" "}
            <button
              type="button"
              onClick={() => {
                storeKey(null);
                setSession({ ...session, principal: "anonymous", tenant: null });
              }}
            >
              Sign out
            </button>
          </span>
        )}
      </header>
      <main>{signedIn ? <Page hash={hash} session={session} go={go} /> : <SignIn onSession={setSession} />}</main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
