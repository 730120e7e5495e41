import { createServer, connect, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

/**
 * A TCP proxy in front of a server (S3 or Postgres) that a test can take down and bring back on the
 * same port: while down, connections are refused and every open one is cut, as when the server
 * itself is unreachable. It works for any S3 implementation, since it only moves bytes.
 */
export interface TcpProxy {
  readonly url: string;
  /** Refuses new connections and cuts the open ones. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a proxy on a free loopback port forwarding to `target` (an http URL). */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port: targetPort } = new URL(target);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = connect(Number(targetPort), hostname);
        for (const sock of [client, upstream]) {
          sockets.add(sock);
          sock.on("close", () => sockets.delete(sock));
          sock.on("error", () => {
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream);
        upstream.pipe(client);
      });
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        port = (s.address() as AddressInfo).port;
        server = s;
        resolve();
      });
    });

  const down = () =>
    new Promise<void>((resolve) => {
      const s = server;
      server = undefined;
      for (const sock of sockets) sock.destroy();
      if (!s) return resolve();
      s.close(() => resolve());
    });

  await listen();
  return {
    url: `http://127.0.0.1:${port}`,
    down,
    up: listen,
    close: down,
  };
}

/**
 * `databaseUrl` rerouted through a proxy that starts down: a Postgres that refuses connections
 * until the test calls `proxy.up()`. The caller closes the proxy.
 */
export async function downedPostgres(databaseUrl: string): Promise<{ proxy: TcpProxy; url: string; port: string }> {
  const db = new URL(databaseUrl);
  const proxy = await startTcpProxy(`http://${db.hostname}:${db.port}`);
  await proxy.down();
  db.port = new URL(proxy.url).port;
  return { proxy, url: db.toString(), port: db.port };
}
