import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isSupportedEndpoint } from "../../services/core/src/domain/request-line.js";
import { checkRequestLine } from "../../services/core/src/domain/request-line-check.js";
import { scanRequestLine, type ScannedRequest } from "../../services/core/src/domain/request-line-scan.js";
import { validateBatchInput } from "../../services/core/src/domain/validate.js";

// Differential fuzzer: the WebAssembly scanner (the fast path) against the contract (JSON.parse,
// zod and the text rules, `checkRequestLine`). Whatever line the scanner accepts, the contract
// must accept with the same custom_id, url, model and stream; and the contract never throws.
// CI runs a bounded number of cases with a fixed seed; `pnpm fuzz` runs many more (FUZZ_RUNS,
// default 200,000) with a random seed that it prints, to replay with FUZZ_SEED.

const FUZZING = process.env.FUZZ === "1";
const RUNS = Number(process.env.FUZZ_RUNS ?? (FUZZING ? 200_000 : 2_000));
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : FUZZING ? (Math.random() * 2 ** 31) | 0 : 15;

const b = (s: string | readonly number[]) => (typeof s === "string" ? Buffer.from(s) : Buffer.from(s));
const cat = (parts: Buffer[]) => Buffer.concat(parts);

/** `usual` mostly, `odd` now and then: each line should hold few oddities, so that many lines pass. */
const mostly = <T>(usual: fc.Arbitrary<T>, odd: fc.Arbitrary<T>, weight = 12) => fc.oneof({ weight, arbitrary: usual }, { weight: 1, arbitrary: odd });

/** One character of a JSON string, raw or escaped in the ways JSON allows. */
const goodChar: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(..."abcXYZ09_-/.:é€ ".split(""), "😀").map((c) => b(c)) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((u) => b(`\\u${u.toString(16).padStart(4, "0")}`)) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((u) => b(`\\u${u.toString(16).toUpperCase().padStart(4, "0")}`)) },
  { weight: 1, arbitrary: fc.constantFrom("\\n", "\\t", '\\"', "\\\\", "\\/", "\\b", "\\f", "\\r", "\\u0000", "\\ud800", "\\udc00", "\\ud83d\\ude00").map(b) },
);
/** What JSON or UTF-8 does not allow in a string: bad escapes, raw control bytes, bytes that are not UTF-8, a BOM. */
const badChar: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constantFrom("\\x", "\\u12", "\\").map(b),
  fc.constantFrom([0x00], [0x09], [0x1f], [0x7f], [0xed, 0xa0, 0x80], [0xc3], [0xff], [0xef, 0xbb, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0xaf]).map(b),
);
const char = mostly(goodChar, badChar, 30);

/** A JSON string's text, quotes included. */
const str = (chars: fc.Arbitrary<Buffer>, max = 12) => fc.array(chars, { maxLength: max }).map((cs) => cat([b('"'), ...cs, b('"')]));
const anyString = str(char);
/** A value for a string field: the usual one, another valid string (unicode included), or any string. */
const fieldString = (usual: string) =>
  fc.oneof({ weight: 6, arbitrary: fc.constant(b(JSON.stringify(usual))) }, { weight: 3, arbitrary: str(fc.constantFrom(..."abcXYZ09_-/.:é€ ".split(""), "😀").map((c) => b(c)), 8) }, { weight: 2, arbitrary: anyString });

/** Arrays and objects nested `depth` levels, near the 128-level limit or not. */
const nested = fc.tuple(fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 60, max: 132 })), fc.boolean()).map(([depth, objects]) => {
  const open = objects ? '{"k":' : "[";
  const close = objects ? "}" : "]";
  return b(`${open.repeat(depth - 1)}${objects ? "{}" : "[]"}${close.repeat(depth - 1)}`);
});

const scalar = fc.oneof(
  fc.constantFrom("0", "-0", "1e400", "-1E-400", "123456789012345678901234567890", "1.5E+10", "0.1e-7", "true", "false", "null").map(b),
  mostly(anyString, fc.constantFrom("01", "1.", "+1", ".5", "-", "tru", "nul", "1e", "NaN").map(b), 8),
);
const value: fc.Arbitrary<Buffer> = fc.letrec<{ v: Buffer }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    nested,
    fc.array(tie("v"), { maxLength: 3 }).map((vs) => cat([b("["), ...vs.flatMap((v, i) => (i ? [b(","), v] : [v])), b("]")])),
    fc.array(fc.tuple(anyString, tie("v")), { maxLength: 3 }).map((kvs) => cat([b("{"), ...kvs.flatMap(([k, v], i) => [...(i ? [b(",")] : []), k, b(":"), v]), b("}")])),
  ),
})).v;

/** A key: the usual name, the same name escaped, or another key (`__proto__` among them). */
const key = (name: string) =>
  mostly(
    fc.constant(b(`"${name}"`)),
    fc.oneof(
      fc.constant(b(`"${name.slice(0, 1)}\\u00${name.charCodeAt(1).toString(16)}${name.slice(2)}"`)),
      fc.constantFrom('"__proto__"', '"constructor"', '"toString"', '"x"').map(b),
    ),
    20,
  );

const space = fc.constantFrom("", "", " ", "\t", "\r", "  ").map(b);
const members = (entries: fc.Arbitrary<[Buffer, Buffer]>[]) =>
  fc
    .tuple(
      fc.tuple(...entries),
      fc.array(fc.tuple(mostly(fc.constant(b('"extra"')), fc.constantFrom('"__proto__"', '"constructor"').map(b), 4), value), { maxLength: 2 }),
      mostly(fc.constant([] as number[]), fc.array(fc.nat(), { minLength: 1, maxLength: 2 }), 10),
      mostly(fc.constant(false), fc.constant(true), 10),
      space,
    )
    .chain(([fixed, extra, dups, dropOne, sp]) => {
      const all = [...fixed, ...extra, ...dups.map((d) => fixed[d % fixed.length]!)];
      return fc.shuffledSubarray(all, { minLength: all.length - (dropOne ? 1 : 0) }).map((kvs) => cat([b("{"), sp, ...kvs.flatMap(([k, v], i) => [...(i ? [b(","), sp] : []), k, sp, b(":"), sp, v]), sp, b("}")]));
    });

const body = members([
  fc.tuple(key("model"), fc.oneof({ weight: 10, arbitrary: fieldString("gpt-x") }, { weight: 1, arbitrary: value })),
  fc.tuple(key("stream"), fc.constantFrom("true", "false", '"true"', "1", "null", "[true]").map(b)),
  fc.tuple(key("messages"), value),
]);

const requestLine = members([
  fc.tuple(key("custom_id"), fc.oneof({ weight: 12, arbitrary: fieldString("req-1") }, { weight: 2, arbitrary: fc.constantFrom('"req\\u002d1"', '"r\\u0065q-1"', '"req-2"', '"\\u00e9"', '"é"').map(b) }, { weight: 1, arbitrary: fc.constantFrom("x".repeat(512), "x".repeat(513), "é".repeat(300), "😀".repeat(256), "😀".repeat(257)).map((id) => b(JSON.stringify(id))) }, { weight: 1, arbitrary: value })),
  fc.tuple(key("method"), fc.oneof({ weight: 10, arbitrary: fc.constant(b('"POST"')) }, { weight: 1, arbitrary: fc.constantFrom('"post"', '"P\\u004fST"', '"POST\\u0000"', '"POST "', "1").map(b) })),
  fc.tuple(key("url"), fieldString("/v1/chat/completions")),
  fc.tuple(key("body"), fc.oneof({ weight: 12, arbitrary: body }, { weight: 1, arbitrary: value })),
]);

const noise = fc.constantFrom(0x00, 0x0d, 0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x20, 0x80, 0xbf, 0xc3, 0xed, 0xef, 0xff);
/** A line, then now and then a near miss: a byte inserted, dropped or replaced, a BOM in front, a CR at the end. */
const line = fc
  .tuple(requestLine, fc.oneof({ weight: 5, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.tuple(fc.nat(), fc.constantFrom("insert", "drop", "replace", "bom", "cr"), noise) }))
  .map(([l, m]) => {
    if (m === null) return l;
    const [at, how, byte] = m;
    const i = at % (l.length + 1);
    if (how === "bom") return cat([b([0xef, 0xbb, 0xbf]), l]);
    if (how === "cr") return cat([l, b("\r")]);
    return cat([l.subarray(0, i), ...(how === "drop" ? [] : [b([byte])]), l.subarray(how === "insert" ? i : i + 1)]);
  });

/** Every case that failed while this fuzzer was written, kept as a regression case. */
const PINNED: [string, Buffer][] = [
  [
    // Found with the scanner's UTF-8 check left out: the contract calls it invalid_utf8.
    "a 0xFF byte in message content",
    cat([b('{"method":"POST","body":{"model":"gpt-x","messages":"'), b([0xff]), b('","stream":true},"custom_id":"a","url":"/v1/chat/completions"}')]),
  ],
];

/** Checks one line: a scanner accept must be a contract accept with the same fields. */
function agree(bytes: Buffer): void {
  const out: ScannedRequest = { customIdStart: 0, customIdEnd: 0, url: "", model: "", stream: false };
  const fast = scanRequestLine(bytes, 0, bytes.length, out);
  const slow = checkRequestLine(bytes, 0, bytes.length, true);
  if (!fast) return;
  expect(slow).toEqual({ ok: true, customId: bytes.toString("utf8", out.customIdStart, out.customIdEnd), url: out.url, model: out.model, stream: out.stream });
}

/** What the validator must report for `lines` as one file: the contract on every line, then the checks across lines. */
function reference(lines: Buffer[]) {
  const errors: { code: string; line: number; param: string | null }[] = [];
  const seen = new Set<string>();
  let model: string | null = null;
  lines.forEach((l, i) => {
    const line = i + 1;
    const r = checkRequestLine(l, 0, l.length, i === 0);
    if (r === null) return;
    if (!r.ok) return void errors.push({ code: r.code, line, param: r.param });
    if (!isSupportedEndpoint(r.url)) errors.push({ code: "unsupported_url", line, param: "url" });
    else if (r.url !== "/v1/chat/completions") errors.push({ code: "url_mismatch", line, param: "url" });
    if (r.stream) errors.push({ code: "stream_unsupported", line, param: "body.stream" });
    if (model === null) model = r.model;
    else if (r.model !== model) errors.push({ code: "model_mismatch", line, param: "body.model" });
    if (seen.has(r.customId)) errors.push({ code: "duplicate_custom_id", line, param: "custom_id" });
    seen.add(r.customId);
  });
  return errors;
}

/** The validator's report on `lines` as one file in one block, fast path and all. */
async function validated(lines: Buffer[]) {
  const bytes = Buffer.concat(lines.flatMap((l) => [l, b("\n")]));
  async function* blocks() {
    yield { bytes, offset: 0, lineNo: 1 };
  }
  const r = await validateBatchInput(blocks(), bytes.length, "/v1/chat/completions", { chunkSize: 2, maxRequests: 100, maxBytes: 1 << 30 });
  return r.errors.filter((e) => e.code !== "empty_file").map((e) => ({ code: e.code, line: e.line, param: e.param }));
}

describe("the scanner against the contract (differential fuzzer)", () => {
  it.each(PINNED)("agrees on a pinned case: %s", (_name, bytes) => {
    agree(bytes);
  });

  it(
    `agrees on ${RUNS} generated lines (seed ${SEED})`,
    () => {
      if (FUZZING) console.log(`fuzz: ${RUNS} runs, seed ${SEED} (replay: FUZZ_SEED=${SEED})`);
      let accepted = 0;
      fc.assert(
        fc.property(line, (bytes) => {
          agree(bytes);
          const out: ScannedRequest = { customIdStart: 0, customIdEnd: 0, url: "", model: "", stream: false };
          if (scanRequestLine(bytes, 0, bytes.length, out)) accepted++;
        }),
        { numRuns: RUNS, seed: SEED },
      );
      // The generator must reach both sides, or the comparison says nothing.
      console.log(`fuzz: the scanner accepted ${accepted} of ${RUNS}`);
      expect(accepted).toBeGreaterThan(RUNS / 25);
      expect(accepted).toBeLessThan(RUNS);
    },
    FUZZING ? 6 * 3600_000 : 120_000,
  );

  it(
    `reports what the contract alone reports, on ${Math.ceil(RUNS / 4)} generated files (seed ${SEED})`,
    async () => {
      // Files of a few lines, so that the fast path and the contract meet on duplicates and models across lines.
      await fc.assert(
        // No generated line holds a newline byte, so each stays one line of the file.
        fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 6 }), async (lines) => {
          expect(await validated(lines)).toEqual(reference(lines));
        }),
        { numRuns: Math.ceil(RUNS / 4), seed: SEED },
      );
    },
    FUZZING ? 6 * 3600_000 : 120_000,
  );
});
