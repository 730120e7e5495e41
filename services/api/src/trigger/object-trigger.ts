import { landedObjectSchema, recordLandedObjects, type LandedObject, type ObjectTrigger } from "@barge/core";
import type { ApiDeps } from "../deps.js";
import { ignoredBecause } from "./landing-rules.js";

const INSERT_BATCH = 1000;

/**
 * The ObjectTrigger the event route and the poller call: it records the objects that may start a
 * batch (once per version, by the unique index) and wakes the acceptor when any was new.
 */
export function createObjectTrigger(deps: Pick<ApiDeps, "db" | "bucket" | "config" | "log">, wakeAcceptor: () => void): ObjectTrigger {
  return {
    async landed(objects: LandedObject[]): Promise<number> {
      // Parsed again: the seam's type is no promise about a caller's data (and it unquotes ETags).
      const parsed = objects.flatMap((o) => {
        const r = landedObjectSchema.safeParse(o);
        return r.success ? [r.data] : [];
      });
      const wanted = parsed.filter((o) => {
        const reason = ignoredBecause(o, deps.bucket, deps.config);
        if (reason !== null) deps.log.debug({ key: o.key.slice(0, 256), reason }, "landed object starts nothing");
        return reason === null;
      });
      let added = 0;
      // Bounded statements: a listing page's worth each, far under Postgres's parameter limit.
      for (let i = 0; i < wanted.length; i += INSERT_BATCH) added += await recordLandedObjects(deps.db, wanted.slice(i, i + INSERT_BATCH));
      if (added > 0) wakeAcceptor();
      return added;
    },
  };
}
