import { createHmac, randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import { expect } from "vitest";

// Webhook endpoints for the webhook suites: a recording receiver and signature checks.

export const SECRET = `whsec_${randomBytes(32).toString("base64")}`;

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook endpoint on loopback that records every request and answers with `status(n)` for the n-th. */
export async function startReceiver(status: (n: number) => number = () => 200) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      received.push({ path: req.url ?? "", headers: req.headers, body });
      res.writeHead(status(received.length)).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Verifies a Standard Webhooks signature from scratch: HMAC-SHA256 over `id.timestamp.body`, keyed by the secret's base64 part. */
function signatureValid(r: Received, secret: string): boolean {
  const id = r.headers["webhook-id"] as string;
  const timestamp = r.headers["webhook-timestamp"] as string;
  const expected = createHmac("sha256", Buffer.from(secret.slice("whsec_".length), "base64")).update(`${id}.${timestamp}.${r.body}`).digest("base64");
  return (r.headers["webhook-signature"] as string).split(" ").some((s) => s === `v1,${expected}`);
}

/** The event after checking its signature twice: by hand, and with the openai SDK's own verifier. */
export async function verified(r: Received, secret = SECRET) {
  expect(signatureValid(r, secret)).toBe(true);
  expect(signatureValid(r, `whsec_${randomBytes(32).toString("base64")}`)).toBe(false);
  const sdk = new OpenAI({ apiKey: "x", webhookSecret: secret });
  const event = await sdk.webhooks.unwrap(r.body, r.headers as Record<string, string>);
  expect(JSON.parse(r.body)).toEqual(event);
  return event;
}
