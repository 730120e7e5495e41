import { isStorableText, type ApiConfig, type LandedObject } from "@barge/core";

/** S3's own limit on a key, in UTF-8 bytes: anything longer did not come from an S3 server. */
const MAX_KEY_BYTES = 1024;

type TriggerPrefixes = Pick<ApiConfig, "TRIGGER_PREFIX" | "TRIGGER_RESULTS_PREFIX">;

/**
 * Why a landed object starts no batch, or null when it starts one. Anything under the results
 * prefix is refused first, so a batch's own results can never start another batch; such objects
 * are not recorded at all.
 */
export function ignoredBecause(o: LandedObject, bucket: string, cfg: TriggerPrefixes): string | null {
  if (o.bucket !== bucket) return "another bucket";
  if (Buffer.byteLength(o.key) > MAX_KEY_BYTES || !isStorableText(o.key) || !isStorableText(o.etag) || !isStorableText(o.versionId ?? "")) return "unstorable key";
  if (o.key.startsWith(cfg.TRIGGER_RESULTS_PREFIX)) return "under the results prefix";
  if (!o.key.startsWith(cfg.TRIGGER_PREFIX)) return "outside the trigger prefix";
  if (!o.key.endsWith(".jsonl") || o.key.length === cfg.TRIGGER_PREFIX.length + ".jsonl".length) return "not a .jsonl key";
  if (o.size === 0) return "empty";
  return null;
}

/** Where the results of `<TRIGGER_PREFIX><path>.jsonl` go: `<TRIGGER_RESULTS_PREFIX><path>/`. */
export function resultsPrefixFor(key: string, cfg: TriggerPrefixes): string {
  return `${cfg.TRIGGER_RESULTS_PREFIX}${key.slice(cfg.TRIGGER_PREFIX.length, -".jsonl".length)}/`;
}

/** Whether a file row's object is a user's inbox object, which Barge reads but never deletes. */
export function isInboxKey(key: string, cfg: Pick<ApiConfig, "TRIGGER_PREFIX">): boolean {
  return key.startsWith(cfg.TRIGGER_PREFIX);
}
