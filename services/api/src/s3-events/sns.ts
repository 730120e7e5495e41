import { createVerify, X509Certificate } from "node:crypto";
import { BargeError } from "@barge/core";
import { z } from "zod";
import { EventBodyError } from "./records.js";

/** Fetches an SNS URL (a signing certificate, a SubscribeURL) and returns its body; tests serve their own. */
export type SnsFetch = (url: string) => Promise<string>;

/** A message whose signature or certificate does not check out (403): nothing in it is used. */
export class SnsSignatureError extends BargeError {
  constructor(message: string) {
    super(403, "invalid_request_error", message, "invalid_signature");
  }
}

/** SNS could not be reached for a certificate or a subscription confirmation (502): SNS retries. */
export class SnsUnreachable extends BargeError {
  constructor(what: string) {
    super(502, "server_error", `Could not fetch the ${what} from SNS; retry shortly.`, "sns_unreachable");
  }
}

// SNS signs with certificates it serves from its regional endpoints only (China regions end in .cn).
const SNS_HOST = /^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/;

const common = {
  MessageId: z.string().min(1),
  TopicArn: z.string().min(1),
  Message: z.string(),
  Timestamp: z.string().min(1),
  SignatureVersion: z.enum(["1", "2"]),
  Signature: z.string().min(1),
  SigningCertURL: z.string().min(1),
};

/** The three envelopes SNS POSTs to an HTTP(S) subscription. */
const snsMessage = z.discriminatedUnion("Type", [
  z.object({ Type: z.literal("Notification"), Subject: z.string().optional(), ...common }),
  z.object({ Type: z.literal("SubscriptionConfirmation"), Token: z.string().min(1), SubscribeURL: z.string().min(1), ...common }),
  z.object({ Type: z.literal("UnsubscribeConfirmation"), Token: z.string().min(1), SubscribeURL: z.string().min(1), ...common }),
]);

/** A parsed SNS envelope. */
export type SnsMessage = z.output<typeof snsMessage>;

/** The SNS envelope in a body, or a 400-worthy error naming what is wrong. */
export function parseSnsMessage(body: unknown): SnsMessage {
  const r = snsMessage.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const at = issue.path.length > 0 ? `'${issue.path.map(String).join(".")}'` : "the body";
    throw new EventBodyError(`The body is not an SNS message: ${at}: ${issue.message}.`);
  }
  return r.data;
}

/** An `https://sns.<region>.amazonaws.com/...` URL, or a 400-worthy error: SNS is reached there only. */
export function snsUrl(raw: string, field: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new EventBodyError(`'${field}' is not a URL.`);
  }
  if (url.protocol !== "https:" || !SNS_HOST.test(url.hostname) || url.port !== "" || url.username !== "") {
    throw new EventBodyError(`'${field}' must be an https://sns.<region>.amazonaws.com URL.`);
  }
  return url;
}

// The fields each type signs, in the order AWS documents ("Verifying the signatures of Amazon SNS messages").
const SIGNED: Record<SnsMessage["Type"], readonly string[]> = {
  Notification: ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
  SubscriptionConfirmation: ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"],
  UnsubscribeConfirmation: ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"],
};

/** The string SNS signed: each present field's name and value, one per line. */
export function stringToSign(m: SnsMessage): string {
  const fields = m as unknown as Record<string, string | undefined>;
  return SIGNED[m.Type].filter((name) => fields[name] !== undefined).map((name) => `${name}\n${fields[name]}\n`).join("");
}

/**
 * Checks SNS signatures against certificates fetched from SNS's own hosts, each fetched once per
 * process: SNS signs every message of a topic with the same certificate.
 */
export class SnsVerifier {
  private readonly certs = new Map<string, Promise<X509Certificate>>();

  constructor(private readonly fetchUrl: SnsFetch) {}

  /** Resolves when `m` is signed by the certificate it names; throws `SnsSignatureError` otherwise. */
  async verify(m: SnsMessage): Promise<void> {
    const url = snsUrl(m.SigningCertURL, "SigningCertURL");
    if (!url.pathname.endsWith(".pem")) throw new EventBodyError("'SigningCertURL' must name a .pem certificate.");
    const cert = await this.cert(url.href);
    // Checked at each use, not at the fetch: a cached certificate can expire.
    const now = Date.now();
    if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) throw new SnsSignatureError("The SNS signing certificate is not valid now.");
    const verifier = createVerify(m.SignatureVersion === "1" ? "RSA-SHA1" : "RSA-SHA256");
    verifier.update(stringToSign(m), "utf8");
    if (!verifier.verify(cert.publicKey, m.Signature, "base64")) throw new SnsSignatureError("The SNS message's signature does not match its content.");
  }

  private cert(href: string): Promise<X509Certificate> {
    let cert = this.certs.get(href);
    if (!cert) {
      cert = this.fetchUrl(href).then(
        (pem) => {
          try {
            return new X509Certificate(pem);
          } catch {
            throw new SnsSignatureError("The SNS signing certificate could not be read.");
          }
        },
        () => {
          throw new SnsUnreachable("signing certificate");
        },
      );
      // A failed fetch is not remembered: the next message tries again.
      cert.catch(() => this.certs.delete(href));
      this.certs.set(href, cert);
    }
    return cert;
  }
}

/** Fetches over HTTPS with a deadline, refusing any answer but 200. */
export function httpsFetch(timeoutMs: number): SnsFetch {
  return async (url) => {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "error" });
    if (res.status !== 200) throw new Error(`GET ${new URL(url).host} answered ${res.status}`);
    return res.text();
  };
}
