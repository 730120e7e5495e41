import { escapeUri, HttpRequest } from "@smithy/core/protocols";
import { Sha256 } from "@smithy/core/checksum";
import { SignatureV4 } from "@smithy/signature-v4";
import { describe, expect, it } from "vitest";
import { SigV4Verifier, type SignedRequest } from "./sigv4-verify.js";

// The verifier against the library's own signer, on a fixed clock, for the exact limits.
const creds = { accessKeyId: "BARGETESTKEY0000000000", secretAccessKey: "test-secret-test-secret-test-secret-1234" };
const signer = new SignatureV4({ service: "s3", region: "eu-west-3", credentials: creds, sha256: Sha256, uriEscapePath: false });
const at = new Date("2026-12-04T03:00:00Z");
const MIN = 60_000;
const verifierAt = (ms: number) => new SigV4Verifier(creds, () => at.getTime() + ms);

function request(query: Record<string, string | string[]> = {}, headers: Record<string, string> = {}): HttpRequest {
  return new HttpRequest({ method: "GET", protocol: "http:", hostname: "127.0.0.1", port: 9000, path: "/b/dir/a%20b.txt", query, headers: { host: "127.0.0.1:9000", ...headers } });
}

/** A request for presigning as S3 presigners build it: its body unsigned, said in the query. */
const forPresign = () => request({}, { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" });

/** The request as it arrives on the wire: lower-case headers, the query percent-encoded. */
function wire(r: { method: string; path: string; query?: Record<string, string | string[] | null>; headers: Record<string, string> }): SignedRequest {
  const pairs = Object.entries(r.query ?? {}).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${escapeUri(k)}=${escapeUri(String(x))}`));
  const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method: r.method, url: pairs.length ? `${r.path}?${pairs.join("&")}` : r.path, headers };
}

describe("SigV4Verifier", () => {
  it("accepts a header-signed request up to 15 minutes off either way, and refuses past that", async () => {
    const signed = wire(await signer.sign(request({ prefix: "a b+c", "list-type": "2", tag: ["y", "x"] }, { "content-type": "text/plain" }), { signingDate: at }));
    expect(await verifierAt(15 * MIN).verify(signed)).toBeUndefined();
    expect(await verifierAt(-15 * MIN).verify(signed)).toBeUndefined();
    expect(await verifierAt(15 * MIN + 1000).verify(signed)).toEqual({ code: "RequestTimeTooSkewed", message: "The difference between the request time and the current time is too large." });
    const retyped = { ...signed, headers: { ...signed.headers, "content-type": "text/html" } };
    expect((await verifierAt(0).verify(retyped))?.code).toBe("SignatureDoesNotMatch");
    const requeried = { ...signed, url: signed.url.replace("list-type=2", "list-type=1") };
    expect((await verifierAt(0).verify(requeried))?.code).toBe("SignatureDoesNotMatch");
    const noHash = { ...signed, headers: { ...signed.headers, "x-amz-content-sha256": undefined } };
    expect((await verifierAt(0).verify(noHash))?.message).toBe("x-amz-content-sha256 must be a hex SHA-256, UNSIGNED-PAYLOAD or a STREAMING-* mode the SDK sends");
  });

  it("accepts a presigned URL until X-Amz-Expires has passed, then says it expired", async () => {
    const url = wire(await signer.presign(forPresign(), { signingDate: at, expiresIn: 60 }));
    expect(await verifierAt(60_000).verify(url)).toBeUndefined();
    expect(await verifierAt(61_000).verify(url)).toEqual({ code: "AccessDenied", message: "Request has expired" });
    expect(await verifierAt(-16 * MIN).verify(url)).toEqual({ code: "AccessDenied", message: "Request is not valid yet" });
    const long = wire(await signer.presign(forPresign(), { signingDate: at, expiresIn: 3600 }));
    const stretched = { ...long, url: long.url.replace("X-Amz-Expires=3600", "X-Amz-Expires=604801") };
    expect(await verifierAt(0).verify(stretched)).toEqual({ code: "AuthorizationQueryParametersError", message: "X-Amz-Expires must be between 1 and 604800 seconds" });
  });

  it("names the key, the scope and the algorithm it refuses", async () => {
    const other = new SignatureV4({ service: "s3", region: "eu-west-3", credentials: { ...creds, accessKeyId: "SOMEONEELSE00000000000" }, sha256: Sha256, uriEscapePath: false });
    expect((await verifierAt(0).verify(wire(await other.sign(request(), { signingDate: at }))))?.code).toBe("InvalidAccessKeyId");
    const sqs = wire(await signer.sign(request(), { signingDate: at, signingService: "sqs" }));
    expect(await verifierAt(0).verify(sqs)).toEqual({ code: "AccessDenied", message: "The credential scope must be <access key>/<signing day>/<region>/s3/aws4_request" });
    const v2 = wire(await signer.presign(forPresign(), { signingDate: at }));
    const sha1 = { ...v2, url: v2.url.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1") };
    expect(await verifierAt(0).verify(sha1)).toEqual({ code: "AuthorizationQueryParametersError", message: 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"' });
    expect(await verifierAt(0).verify({ method: "GET", url: "/b/k?%E0%A4%A=1", headers: { host: "x" } })).toEqual({ code: "AccessDenied", message: "The query string is not valid percent-encoding" });
  });
});
