// vLLM-shaped error bodies. Current vLLM (ErrorResponse/ErrorInfo in
// vllm/entrypoints/openai/protocol.py) answers {"error":{"message","type","param","code"}} with
// `code` set to the HTTP status as an integer and `type` the exception class name.

/** JSON error body as vLLM sends it. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: number };
}

/** An HTTP error the sim answers with; thrown by request validation, turned into a response by the server. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The response body for this error. */
  body(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.status } };
  }
}

/** 400 for a malformed request (invalid JSON, missing or mistyped field). */
export function badRequest(message: string, param: string | null = null): ApiError {
  return new ApiError(400, "BadRequestError", message, param);
}

/** 404 for a model the sim does not serve, worded as vLLM does. */
export function modelNotFound(model: string): ApiError {
  return new ApiError(404, "NotFoundError", `The model \`${model}\` does not exist.`, "model");
}

/** 400 when prompt + requested completion exceed the context window, in vLLM's classic wording that clients parse. */
export function contextLengthExceeded(maxModelLen: number, promptTokens: number, maxTokens: number | null): ApiError {
  const head = `This model's maximum context length is ${maxModelLen} tokens.`;
  const message =
    maxTokens === null
      ? `${head} However, you requested ${promptTokens} tokens in the messages. Please reduce the length of the messages.`
      : `${head} However, you requested ${promptTokens + maxTokens} tokens (${promptTokens} in the messages, ${maxTokens} in the completion). Please reduce the length of the messages or completion.`;
  return new ApiError(400, "BadRequestError", message);
}

/** 400 when one embedding input alone exceeds the context window (vLLM's embeddings wording). */
export function embeddingInputTooLong(maxModelLen: number, inputTokens: number): ApiError {
  return new ApiError(
    400,
    "BadRequestError",
    `This model's maximum context length is ${maxModelLen} tokens. However, you requested ${inputTokens} tokens in the input for embedding generation. Please reduce the length of the input.`,
  );
}

/** 400 for a request carrying the fail marker: a deterministic, permanent failure for tests. */
export function failMarkerHit(marker: string): ApiError {
  return badRequest(`engine-sim: request contains the fail marker "${marker}" (simulated permanent failure)`);
}

/** 500 answered to a request picked by `errorRate`. */
export function injectedError(): ApiError {
  return new ApiError(500, "InternalServerError", "engine-sim: injected error (simulated, see errorRate)");
}

/** 404 for a path no route serves. */
export function routeNotFound(path: string): ApiError {
  return new ApiError(404, "NotFoundError", `Not Found: ${path}`);
}

/** 405 for a known path used with the wrong method. */
export function methodNotAllowed(method: string, path: string): ApiError {
  return new ApiError(405, "MethodNotAllowedError", `Method Not Allowed: ${method} ${path}`);
}

/** 413 for a body over the sim's size limit. */
export function payloadTooLarge(limitBytes: number): ApiError {
  return new ApiError(413, "PayloadTooLargeError", `Request body exceeds ${limitBytes} bytes`);
}
