import { z } from "zod";

/** Endpoints a batch may target; each line's `url` must be one of these. */
export const SUPPORTED_ENDPOINTS = [
  "/v1/chat/completions",
  "/v1/completions",
  "/v1/embeddings",
  "/v1/responses",
] as const;
export type Endpoint = (typeof SUPPORTED_ENDPOINTS)[number];

export function isSupportedEndpoint(url: string): url is Endpoint {
  return (SUPPORTED_ENDPOINTS as readonly string[]).includes(url);
}

/** One line of a batch input file, as OpenAI's Batch API defines it. */
export const requestLineSchema = z.object({
  custom_id: z.string().min(1).max(512),
  method: z.literal("POST"),
  url: z.string().min(1),
  body: z.looseObject({ model: z.string().min(1) }),
});
export type RequestLine = z.infer<typeof requestLineSchema>;
