import { landedObjectSchema, recordLandedObjects, type LandedObject, type ObjectTrigger } from "@barge/core";
import type { ApiDeps } from "../deps.js";
import { ignoredBecause } from "./landing-rules.js";

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
      const added = await recordLandedObjects(deps.db, wanted);
      if (added > 0) wakeAcceptor();
      return added;
    },
  };
}
