/** The content type a file is stored and served with, from its name. */
export function contentTypeFor(filename: string): string {
  return filename.toLowerCase().endsWith(".jsonl") ? "application/jsonl" : "application/octet-stream";
}
