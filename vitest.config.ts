import { defineConfig } from "vitest/config";

/** Per-project settings both projects share (inline projects do not inherit the root's `test`). */
const shared = {
  pool: "forks",
  testTimeout: 60_000,
  hookTimeout: 120_000,
  teardownTimeout: 60_000,
} as const;

/** Suites that only make sense on a real S3 implementation, plus the SDK end-to-end test again. */
const conformance = ["test/conformance/**/*.test.ts", "test/e2e/openai-quickstart.test.ts", "services/core/src/storage/stitch.test.ts"];

export default defineConfig({
  test: {
    ...shared,
    // The root's global setup runs once whichever projects run, and its `provide`d values reach
    // every project: one PostgreSQL for the whole run.
    globalSetup: ["test/support/pg-setup.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    maxWorkers: 2,
    projects: [
      {
        test: {
          ...shared,
          name: "main",
          include: ["services/*/src/**/*.test.ts", "test/**/*.test.ts"],
          exclude: ["**/node_modules/**", "test/conformance/**"],
          // s3rver in-process, or the server S3_ENDPOINT names.
          globalSetup: ["test/support/global-setup.ts"],
        },
      },
      {
        test: {
          ...shared,
          name: "s3-conformance",
          include: conformance,
          // Ceph RGW on loopback, or CONFORMANCE_S3_ENDPOINT / S3_ENDPOINT, or s3rver (strict suites skip).
          globalSetup: ["test/support/rgw-setup.ts"],
          setupFiles: ["test/support/conformance-env.ts"],
          // The stitcher's s3rver half already runs in `main`; here only its real-S3 half is wanted.
          // Vitest applies a project's own testNamePattern to that project alone, though its types
          // list the option as root-only; were it ignored, that half would merely run twice.
          ...({ testNamePattern: /^(?!stitch on s3rver )/ } as {}),
          testTimeout: 180_000,
          // After `main`, not beside it: these suites load the 2-core CI box (RGW's daemons, MBs of
          // JSON), and `main` has lease- and timeout-driven fault tests that should not share it.
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
