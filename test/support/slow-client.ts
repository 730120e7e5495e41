import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/** A multipart/form-data body for POST /v1/files with `purpose=batch` and `content` as the file. */
export function fileForm(content: Buffer, filename = "slow.jsonl"): { contentType: string; body: Buffer } {
  const boundary = "slowclientboundary";
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/jsonl\r\n\r\n`),
    content,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { contentType: `multipart/form-data; boundary=${boundary}`, body };
}

/** What the server answered a raw request with, and whether it closed the connection. */
export interface RawAnswer {
  status: number | undefined;
  text: string;
}

/**
 * POSTs `body` over a plain socket in `pieces` writes with `pauseMs` between them, the way a slow
 * link does. With `sendPieces` fewer than `pieces` the client stops sending and just waits, still
 * connected; with `hangUp` it awaits that after the pieces sent and then hangs up. Resolves with
 * what the server wrote once it closes the connection (or, after a hang-up, at once).
 */
export function slowPost(
  url: string,
  path: string,
  form: { contentType: string; body: Buffer },
  opts: { pieces: number; pauseMs: number; sendPieces?: number; hangUp?: () => Promise<unknown> },
): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  const received: Buffer[] = [];
  socket.on("data", (d: Buffer) => received.push(d));
  const answer = (): RawAnswer => {
    const text = Buffer.concat(received).toString("utf8");
    const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
    return { status: status === undefined ? undefined : Number(status), text };
  };
  const closed = new Promise<RawAnswer>((resolve, reject) => {
    socket.on("close", () => resolve(answer()));
    socket.on("error", (err: NodeJS.ErrnoException) => (err.code === "ECONNRESET" ? undefined : reject(err)));
  });
  const send = async () => {
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: ${form.contentType}\r\nContent-Length: ${form.body.length}\r\nConnection: close\r\n\r\n`,
    );
    const size = Math.ceil(form.body.length / opts.pieces);
    for (let i = 0; i < (opts.sendPieces ?? opts.pieces); i++) {
      if (i > 0) await sleep(opts.pauseMs);
      if (socket.destroyed) return;
      socket.write(form.body.subarray(i * size, (i + 1) * size));
    }
    if (opts.hangUp) {
      await opts.hangUp();
      socket.destroy();
    }
  };
  return send().then(() => (opts.hangUp ? answer() : closed));
}
