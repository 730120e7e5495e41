import { type SimFaults, faultsSchema } from "./config.js";
import { isRecord } from "./json.js";
import { mulberry32 } from "./prng.js";

// Fault injection: the live settings, the fail-marker check and the seeded draw that decides
// whether a valid request is answered, failed with a 500 or left hanging.

const PROMPT_FIELDS = ["messages", "prompt", "input", "instructions"] as const;
const partialFaultsSchema = faultsSchema.partial();

/** What fault injection does with a valid request. */
export type FaultOutcome = "serve" | "error" | "hang";

/** The sim's live fault settings and the draws made from them. */
export class FaultInjector {
  private readonly faults: SimFaults;
  private random: () => number;
  // The marker as it appears inside a JSON string, so the raw body can be searched before parsing fields.
  private escapedMarker: string;

  constructor(initial: SimFaults) {
    this.faults = { ...initial };
    this.random = mulberry32(this.faults.seed);
    this.escapedMarker = jsonEscape(this.faults.failMarker);
  }

  /** A copy of the current settings. */
  current(): SimFaults {
    return { ...this.faults };
  }

  /** Applies a partial update (throws ZodError on invalid values); a new seed restarts the draws. */
  set(partial: Partial<SimFaults>): SimFaults {
    const update = partialFaultsSchema.parse(partial);
    Object.assign(this.faults, update);
    if (update.seed !== undefined) this.random = mulberry32(update.seed);
    this.escapedMarker = jsonEscape(this.faults.failMarker);
    return { ...this.faults };
  }

  /** True when the fail marker is set and occurs in one of the request's prompt fields. */
  markerHit(raw: string, body: unknown): boolean {
    const marker = this.escapedMarker;
    return marker !== "" && raw.includes(marker) && isRecord(body) && promptContains(body, marker);
  }

  /** Draws the outcome for one valid inference request. */
  draw(): FaultOutcome {
    // One draw per valid inference request, in arrival order: the same seed and the same request
    // order give the same faults.
    const draw = this.random();
    if (draw < this.faults.errorRate) return "error";
    if (draw < this.faults.errorRate + this.faults.timeoutRate) return "hang";
    return "serve";
  }

  get failMarker(): string {
    return this.faults.failMarker;
  }

  get hangMs(): number {
    return this.faults.hangMs;
  }
}

function promptContains(body: Record<string, unknown>, escapedMarker: string): boolean {
  for (const field of PROMPT_FIELDS) {
    const value = body[field];
    if (value !== undefined && JSON.stringify(value).includes(escapedMarker)) return true;
  }
  return false;
}

function jsonEscape(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}
