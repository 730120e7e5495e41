import { rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** A hidden temp name beside `path` that the watcher never takes as an input. */
function tempBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
}

/** Writes through a temp file and a rename, so a reader sees the old content or the new, never half. */
export async function writeFileAtomic(path: string, content: string): Promise<void> {
  await produceAtomic(path, (tmp) => writeFile(tmp, content));
}

/** Lets `produce` fill a temp file, then renames it onto `path`; a failure leaves no temp file behind. */
export async function produceAtomic(path: string, produce: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = tempBeside(path);
  try {
    await produce(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
