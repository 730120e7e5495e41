import { timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { Sha256 } from "@smithy/core/checksum";
import {
  ALGORITHM_IDENTIFIER,
  SignatureV4Base,
  UNSIGNED_PAYLOAD,
  createScope,
  getCanonicalHeaders,
  getSigningKey,
} from "@smithy/signature-v4";
import type { S3Credentials } from "./s3-credentials.js";

/** Why a request is refused, as S3 names it. */
export interface AuthRefusal {
  code: "AccessDenied" | "SignatureDoesNotMatch" | "InvalidAccessKeyId" | "RequestTimeTooSkewed" | "AuthorizationQueryParametersError";
  message: string;
}

/** The parts of an incoming request a SigV4 signature covers. */
export interface SignedRequest {
  method: string;
  /** The request target as sent: raw path and query. */
  url: string;
  headers: IncomingHttpHeaders;
}

/** Query parameters that carry a presigned URL's authentication, not the request itself. */
export const PRESIGN_PARAMS = [
  "X-Amz-Algorithm",
  "X-Amz-Credential",
  "X-Amz-Date",
  "X-Amz-Expires",
  "X-Amz-SignedHeaders",
  "X-Amz-Signature",
  "X-Amz-Security-Token",
] as const;

const MAX_SKEW_MS = 15 * 60_000;
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;
/** Payload modes the SDK sends: a hex digest, unsigned, or aws-chunked streaming (signed or not, with or without trailer). */
const PAYLOAD_HASH = /^(?:[0-9a-f]{64}|UNSIGNED-PAYLOAD|STREAMING-UNSIGNED-PAYLOAD-TRAILER|STREAMING-AWS4-HMAC-SHA256-PAYLOAD(?:-TRAILER)?)$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const AUTH_HEADER = /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/;

const ANONYMOUS: AuthRefusal = { code: "AccessDenied", message: "Access Denied" };
const MISMATCH: AuthRefusal = {
  code: "SignatureDoesNotMatch",
  message: "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
};
const QUERY_PARAMS_MISSING: AuthRefusal = {
  code: "AuthorizationQueryParametersError",
  message:
    "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
};

/**
 * The library's canonical request and string to sign (path as sent, as S3 signs it), so the
 * verifier computes exactly what the SDK's signer computes for the same parts.
 */
class Canonicalizer extends SignatureV4Base {
  constructor() {
    super({ service: "s3", region: "us-east-1", credentials: { accessKeyId: "", secretAccessKey: "" }, sha256: Sha256, uriEscapePath: false });
  }

  async signature(creds: S3Credentials, scope: Scope, longDate: string, request: CanonicalInput, headers: Record<string, string>, payloadHash: string): Promise<Buffer> {
    const canonical = this.createCanonicalRequest(request as never, headers, payloadHash);
    const stringToSign = await this.createStringToSign(longDate, createScope(scope.date, scope.region, scope.service), canonical, ALGORITHM_IDENTIFIER);
    const key = await getSigningKey(Sha256, creds, scope.date, scope.region, scope.service);
    const hmac = new Sha256(key);
    hmac.update(Buffer.from(stringToSign));
    return Buffer.from(await hmac.digest());
  }
}

interface Scope {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
}
interface CanonicalInput {
  method: string;
  path: string;
  query: Record<string, string | string[]>;
}

/** Checks a request's SigV4 signature (Authorization header or presigned query) against `creds`; undefined means accepted. */
export class SigV4Verifier {
  private readonly canon = new Canonicalizer();

  constructor(
    private readonly creds: S3Credentials,
    private readonly now: () => number = Date.now,
  ) {}

  async verify(req: SignedRequest): Promise<AuthRefusal | undefined> {
    const q = req.url.indexOf("?");
    const path = q < 0 ? req.url : req.url.slice(0, q);
    const query = parseQuery(q < 0 ? "" : req.url.slice(q + 1));
    if (query === undefined) return { code: "AccessDenied", message: "The query string is not valid percent-encoding" };
    const input: CanonicalInput = { method: req.method, path, query };
    const auth = req.headers.authorization;
    if (auth !== undefined) return this.verifyHeader(auth, input, req.headers);
    if (query["X-Amz-Algorithm"] !== undefined) return this.verifyPresigned(input, req.headers);
    return ANONYMOUS;
  }

  private async verifyHeader(auth: string, input: CanonicalInput, headers: IncomingHttpHeaders): Promise<AuthRefusal | undefined> {
    const m = AUTH_HEADER.exec(auth);
    if (!m) return { code: "AccessDenied", message: "The Authorization header is not AWS Signature Version 4 (AWS4-HMAC-SHA256)" };
    const [, credential = "", signedHeaders = "", signature = ""] = m;
    const longDate = single(headers["x-amz-date"]);
    if (longDate === undefined || !AMZ_DATE.test(longDate)) return { code: "AccessDenied", message: "AWS authentication requires a valid x-amz-date header" };
    const payloadHash = single(headers["x-amz-content-sha256"]);
    if (payloadHash === undefined || !PAYLOAD_HASH.test(payloadHash)) {
      return { code: "AccessDenied", message: "x-amz-content-sha256 must be a hex SHA-256, UNSIGNED-PAYLOAD or a STREAMING-* mode the SDK sends" };
    }
    const scoped = this.checkScope(credential, longDate);
    if ("code" in scoped) return scoped;
    if (Math.abs(this.now() - amzTime(longDate)) > MAX_SKEW_MS) {
      return { code: "RequestTimeTooSkewed", message: "The difference between the request time and the current time is too large." };
    }
    return this.compare(scoped, longDate, input, headers, signedHeaders, payloadHash, signature);
  }

  private async verifyPresigned(input: CanonicalInput, headers: IncomingHttpHeaders): Promise<AuthRefusal | undefined> {
    const param = (k: (typeof PRESIGN_PARAMS)[number]) => single(input.query[k]);
    const credential = param("X-Amz-Credential");
    const longDate = param("X-Amz-Date");
    const expires = param("X-Amz-Expires");
    const signedHeaders = param("X-Amz-SignedHeaders");
    const signature = param("X-Amz-Signature");
    if (!credential || !longDate || !expires || !signedHeaders || !signature) return QUERY_PARAMS_MISSING;
    if (param("X-Amz-Algorithm") !== ALGORITHM_IDENTIFIER) {
      return { code: "AuthorizationQueryParametersError", message: 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"' };
    }
    if (!AMZ_DATE.test(longDate)) return { code: "AuthorizationQueryParametersError", message: "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"" };
    const ttl = /^\d{1,7}$/.test(expires) ? Number(expires) : 0;
    if (ttl < 1 || ttl > MAX_PRESIGN_SECONDS) return { code: "AuthorizationQueryParametersError", message: "X-Amz-Expires must be between 1 and 604800 seconds" };
    if (!/^[0-9a-f]{64}$/.test(signature)) return MISMATCH;
    const scoped = this.checkScope(credential, longDate);
    if ("code" in scoped) return scoped;
    const signedAt = amzTime(longDate);
    if (signedAt - this.now() > MAX_SKEW_MS) return { code: "AccessDenied", message: "Request is not valid yet" };
    if (this.now() > signedAt + ttl * 1000) return { code: "AccessDenied", message: "Request has expired" };
    // A presigned URL never signs its body; the SDK's presigner names that in the query.
    const payloadHash = single(input.query["X-Amz-Content-Sha256"]) ?? UNSIGNED_PAYLOAD;
    return this.compare(scoped, longDate, input, headers, signedHeaders, payloadHash, signature);
  }

  /** The credential scope `<key>/<yyyymmdd>/<region>/s3/aws4_request`, for this server's key and the signing day. */
  private checkScope(credential: string, longDate: string): Scope | AuthRefusal {
    const parts = credential.split("/");
    if (parts.length !== 5 || parts[4] !== "aws4_request" || parts[3] !== "s3" || !parts[2] || parts[1] !== longDate.slice(0, 8)) {
      return { code: "AccessDenied", message: "The credential scope must be <access key>/<signing day>/<region>/s3/aws4_request" };
    }
    if (parts[0] !== this.creds.accessKeyId) {
      return { code: "InvalidAccessKeyId", message: "The AWS Access Key Id you provided does not exist in our records." };
    }
    return { accessKeyId: parts[0], date: parts[1], region: parts[2], service: parts[3] };
  }

  private async compare(
    scope: Scope,
    longDate: string,
    input: CanonicalInput,
    headers: IncomingHttpHeaders,
    signedHeaderList: string,
    payloadHash: string,
    provided: string,
  ): Promise<AuthRefusal | undefined> {
    const names = signedHeaderList.split(";");
    if (!names.includes("host")) return { code: "AccessDenied", message: "The host header must be signed" };
    const present: Record<string, string> = Object.create(null);
    for (const name of names) {
      const v = headers[name];
      if (v !== undefined) present[name] = Array.isArray(v) ? v.join(",") : v;
    }
    const canonicalHeaders = getCanonicalHeaders({ headers: present } as never, new Set(), new Set(names));
    if (Object.keys(canonicalHeaders).sort().join(";") !== signedHeaderList) return MISMATCH;
    const expected = await this.canon.signature(this.creds, scope, longDate, input, canonicalHeaders, payloadHash);
    return timingSafeEqual(expected, Buffer.from(provided, "hex")) ? undefined : MISMATCH;
  }
}

/** Splits a raw query into decoded values (repeated keys as arrays), as the signer expects them; undefined if not decodable. */
function parseQuery(raw: string): Record<string, string | string[]> | undefined {
  const out: Record<string, string | string[]> = Object.create(null);
  for (const pair of raw.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
      value = eq < 0 ? "" : decodeURIComponent(pair.slice(eq + 1));
    } catch {
      return undefined;
    }
    const had = out[key];
    out[key] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
  }
  return out;
}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v;
}

function amzTime(longDate: string): number {
  const [, y, mo, d, h, mi, s] = AMZ_DATE.exec(longDate)!.map(Number) as number[];
  return Date.UTC(y!, mo! - 1, d!, h!, mi!, s!);
}
