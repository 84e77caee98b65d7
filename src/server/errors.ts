/**
 * The embedded registry's refusals as values: a resource handler throws a
 * {@linkcode RegistryHttpError} that knows its status, OCI error code and headers, and the
 * router turns whatever was thrown into one answer with {@linkcode errorAnswer}.
 *
 * @module
 */
import { RepositoryNameError } from "./repository_name.ts";
import { UploadLimitError } from "../store/store.ts";
import { UploadSessionLimitError } from "./upload_sessions.ts";

/** The header every answer of the registry carries. */
export const API_HEADERS: Readonly<Record<string, string>> = {
  "docker-distribution-api-version": "registry/2.0",
};

/** Options of {@linkcode RegistryHttpError}. */
export interface RegistryHttpErrorOptions {
  /** The `detail` member of the OCI error. */
  readonly detail?: unknown;
  /** Headers of the answer besides {@linkcode API_HEADERS}. */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * A request the registry refuses, with the answer it gets: the status, and an OCI error body
 * `{"errors": [{"code", "message", "detail"}]}`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegistryHttpError } from "./errors.ts";
 * const response = new RegistryHttpError(404, "NAME_UNKNOWN", "repository app is not known").toResponse();
 * assert.equal(response.status, 404);
 * assert.equal((await response.json()).errors[0].code, "NAME_UNKNOWN");
 * ```
 */
export class RegistryHttpError extends Error {
  /** The HTTP status of the answer. */
  readonly status: number;
  /** The OCI error code (`BLOB_UNKNOWN`, `MANIFEST_INVALID`, …). */
  readonly code: string;
  /** The `detail` member of the OCI error, if any. */
  readonly detail?: unknown;
  /** Headers of the answer besides {@linkcode API_HEADERS}. */
  readonly headers: Readonly<Record<string, string>>;

  /**
   * Makes the refusal.
   *
   * @param status The HTTP status.
   * @param code The OCI error code.
   * @param message The message the client is shown.
   * @param options Detail and headers.
   */
  constructor(
    status: number,
    code: string,
    message: string,
    options: RegistryHttpErrorOptions = {},
  ) {
    super(message);
    this.name = "RegistryHttpError";
    this.status = status;
    this.code = code;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  /** The answer: the status, the OCI error as JSON, and the headers. */
  toResponse(): Response {
    const error = {
      code: this.code,
      message: this.message,
      ...(this.detail !== undefined ? { detail: this.detail } : {}),
    };
    return Response.json({ errors: [error] }, {
      status: this.status,
      headers: { ...API_HEADERS, ...this.headers },
    });
  }
}

/** 405 `UNSUPPORTED`: the endpoint has no such method. */
export function methodNotAllowed(method: string): RegistryHttpError {
  return new RegistryHttpError(
    405,
    "UNSUPPORTED",
    `${method} is not allowed here`,
  );
}

/** 405 `UNSUPPORTED`: the registry was made with `delete: false`. */
export function deletesDisabled(): RegistryHttpError {
  return new RegistryHttpError(405, "UNSUPPORTED", "deletes are disabled");
}

/** 400 `UNSUPPORTED`: a digest algorithm uploads cannot use. */
export function unsupported(message: string): RegistryHttpError {
  return new RegistryHttpError(400, "UNSUPPORTED", message);
}

/** 404 `NOT_FOUND`: no endpoint has this path. */
export function notFound(path: string): RegistryHttpError {
  return new RegistryHttpError(404, "NOT_FOUND", `no such endpoint: ${path}`);
}

/** 400 `DIGEST_INVALID`: text that is no digest. */
export function digestInvalid(digest: string): RegistryHttpError {
  return new RegistryHttpError(
    400,
    "DIGEST_INVALID",
    `"${digest}" is not a valid digest`,
  );
}

/** 400 `DIGEST_INVALID`: content that does not match the digest it was sent under. */
export function digestMismatch(
  message: string,
  detail?: unknown,
): RegistryHttpError {
  return new RegistryHttpError(400, "DIGEST_INVALID", message, { detail });
}

/** 400 `TAG_INVALID`. */
export function tagInvalid(tag: string): RegistryHttpError {
  return new RegistryHttpError(
    400,
    "TAG_INVALID",
    `"${tag}" is not a valid tag`,
  );
}

/** 404 `NAME_UNKNOWN`: the repository has nothing. */
export function nameUnknown(name: string): RegistryHttpError {
  return new RegistryHttpError(
    404,
    "NAME_UNKNOWN",
    `repository ${name} is not known`,
  );
}

/** 404 `BLOB_UNKNOWN`. */
export function blobUnknown(digest: string): RegistryHttpError {
  return new RegistryHttpError(
    404,
    "BLOB_UNKNOWN",
    `blob ${digest} is not known`,
  );
}

/** 404 `BLOB_UPLOAD_UNKNOWN`: no open upload session has this id in this repository. */
export function uploadUnknown(id: string): RegistryHttpError {
  return new RegistryHttpError(
    404,
    "BLOB_UPLOAD_UNKNOWN",
    `upload ${id} is not known`,
  );
}

/** 404 `MANIFEST_UNKNOWN`. */
export function manifestUnknown(reference: string): RegistryHttpError {
  return new RegistryHttpError(
    404,
    "MANIFEST_UNKNOWN",
    `manifest ${reference} is not known`,
  );
}

/** 400 `MANIFEST_INVALID`. */
export function manifestInvalid(message: string): RegistryHttpError {
  return new RegistryHttpError(400, "MANIFEST_INVALID", message);
}

/** 400 `MANIFEST_BLOB_UNKNOWN`: a manifest points to a blob or manifest the repository lacks. */
export function manifestBlobUnknown(
  what: "blob" | "manifest",
  digest: string,
): RegistryHttpError {
  return new RegistryHttpError(
    400,
    "MANIFEST_BLOB_UNKNOWN",
    `${what} ${digest} is not known`,
    { detail: { digest } },
  );
}

/** 413 `SIZE_INVALID`: a manifest larger than the registry takes. */
export function manifestTooLarge(limit: number): RegistryHttpError {
  return new RegistryHttpError(
    413,
    "SIZE_INVALID",
    `manifests are limited to ${limit} bytes`,
  );
}

/** 400 `PAGINATION_NUMBER_INVALID`: a tag list's `n` that is no count. */
export function paginationNumberInvalid(text: string): RegistryHttpError {
  return new RegistryHttpError(
    400,
    "PAGINATION_NUMBER_INVALID",
    `n="${text}" is not a number`,
  );
}

/** Whether an error is the process (EMFILE) or system (ENFILE) running out of descriptors. */
function isOutOfDescriptors(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "EMFILE" || code === "ENFILE" ||
    /\(os error (?:23|24)\)/.test(String((error as Error)?.message));
}

/**
 * The refusal an error means: itself when it is a {@linkcode RegistryHttpError}; 429 or 413 for
 * a full registry or an upload too large; 400 `NAME_INVALID` for a repository name; 503 with
 * `Retry-After` when the process is out of file descriptors; otherwise 500 `UNKNOWN`, a bug.
 */
export function httpErrorOf(error: unknown): RegistryHttpError {
  if (error instanceof RegistryHttpError) return error;
  if (error instanceof UploadSessionLimitError) {
    return new RegistryHttpError(429, "TOOMANYREQUESTS", error.message);
  }
  if (error instanceof UploadLimitError) {
    return error.scope === "upload"
      ? new RegistryHttpError(413, "SIZE_INVALID", error.message)
      : new RegistryHttpError(429, "TOOMANYREQUESTS", error.message);
  }
  if (error instanceof RepositoryNameError) {
    return new RegistryHttpError(400, "NAME_INVALID", error.message);
  }
  if (isOutOfDescriptors(error)) {
    return new RegistryHttpError(
      503,
      "UNAVAILABLE",
      `the registry is out of file descriptors, try again: ${
        (error as Error).message
      }`,
      { headers: { "retry-after": "1" } },
    );
  }
  return new RegistryHttpError(
    500,
    "UNKNOWN",
    `internal error: ${(error as Error).message}`,
  );
}
