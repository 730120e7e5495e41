import { describe, expect, test } from "vitest";
import { backoffSeconds, webhookEvent } from "./deliver.js";
import { signWebhook } from "./sign.js";

describe("webhook delivery", () => {
  test("backs off exponentially from one second, capped at an hour", () => {
    expect([1, 2, 3, 4, 10, 12, 13, 40].map(backoffSeconds)).toEqual([1, 2, 4, 8, 512, 2048, 3600, 3600]);
  });

  test("events have OpenAI's shape", () => {
    const e = webhookEvent({ event_id: "evt_1", type: "batch.completed", batch_id: "batch_1", created_at: new Date(1_700_000_000_500) });
    expect(e).toEqual({ id: "evt_1", object: "event", type: "batch.completed", created_at: 1_700_000_000, data: { id: "batch_1" } });
  });

  test("signs as the Standard Webhooks specification's own example", () => {
    // The example from the specification (github.com/standard-webhooks/standard-webhooks, spec).
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const body = '{"test": 2432232314}';
    expect(signWebhook(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });
});
