/**
 * Which failures are worth trying again: one place that decides, for the opener's request
 * retries and for the operation-level retries of uploads, downloads into the stage and copies.
 *
 * @module
 */
import { DigestMismatchError } from "../reference/digest.ts";
import { RegistryError, TimeoutError } from "./errors.ts";

/**
 * Tells whether an error means a request never got a full answer (connection refused, reset,
 * cut short, stalled), so that sending it again may succeed. Transports report these as
 * `TypeError` (as `fetch` does), as Deno's connection errors, or as a `TimeoutError` when the
 * server stayed silent too long; an abort is never one.
 *
 * @param error What was thrown.
 * @returns True for network errors.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isNetworkError } from "./transient.ts";
 * import { TimeoutError } from "./errors.ts";
 * assert.equal(isNetworkError(new TypeError("error sending request")), true);
 * assert.equal(isNetworkError(new DOMException("stop", "AbortError")), false);
 * const stalled = new TimeoutError({ method: "GET", url: "http://127.0.0.1:5000/v2/", phase: "headers", timeout: 500 });
 * assert.equal(isNetworkError(stalled), true);
 * ```
 */
export function isNetworkError(error: unknown): boolean {
  if (error instanceof DOMException && error.name === "AbortError") {
    return false;
  }
  return error instanceof TypeError || error instanceof TimeoutError ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionRefused ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.TimedOut;
}

/** Registry error codes that mean an upload session was lost or its bytes arrived damaged. */
const TRANSIENT_CODES = new Set([
  "BLOB_UPLOAD_UNKNOWN",
  "BLOB_UPLOAD_INVALID",
  "DIGEST_INVALID",
  "SIZE_INVALID",
  "TOOMANYREQUESTS",
  "UNAVAILABLE",
]);

/** Statuses that a later attempt of a whole operation may get past. */
const TRANSIENT_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/**
 * Tells whether a failed transfer (a download into the stage, an upload, a blob copied between
 * stores) is worth starting again from the beginning: network errors, bytes that did not match
 * their digest or size, transient statuses that outlasted the opener's own retries, and upload
 * sessions the registry lost or refused because the bytes arrived damaged. A refusal such as
 * 401, 403 or 404 of the repository is not transient, and neither is anything after `signal`
 * was aborted.
 *
 * @param error What was thrown.
 * @param signal The operation's abort signal, if any.
 * @returns True when the operation may be started again.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isTransientError } from "./transient.ts";
 * import { RegistryError, TimeoutError } from "./errors.ts";
 * const lost = new RegistryError({
 *   method: "PUT", url: "http://127.0.0.1:5000/v2/a/blobs/uploads/x", status: 404,
 *   codes: [{ code: "BLOB_UPLOAD_UNKNOWN", message: "blob upload unknown" }],
 * });
 * assert.equal(isTransientError(lost), true);
 * const denied = new RegistryError({ method: "GET", url: "http://127.0.0.1:5000/v2/a/tags/list", status: 403 });
 * assert.equal(isTransientError(denied), false);
 * ```
 */
export function isTransientError(
  error: unknown,
  signal?: AbortSignal,
): boolean {
  if (signal?.aborted) return false;
  if (error instanceof DigestMismatchError) return true;
  if (error instanceof RegistryError) {
    return TRANSIENT_STATUSES.has(error.status) ||
      error.codes.some((c) => TRANSIENT_CODES.has(c.code));
  }
  return isNetworkError(error);
}

/** Options of {@linkcode retryTransient}. */
export interface RetryTransientOptions {
  /**
   * Attempts in all, the first included. A registry's refusal (a status that outlasted the
   * opener's retries, a lost upload session) is tried again once only.
   * @default {5}
   */
  readonly attempts?: number;
  /** Stops retrying once aborted. */
  readonly signal?: AbortSignal;
  /** Told before each new attempt, with the error that ended the previous one. */
  readonly onRetry?: (error: unknown, attempt: number) => void;
}

/**
 * Runs a whole operation (an upload session, a download into the stage, a blob copy) again from
 * the start when it fails with a transient error ({@linkcode isTransientError}); other errors,
 * and the last attempt's error, are thrown unchanged.
 *
 * @param task The operation; it gets the attempt number, from 1.
 * @param options Attempts, abort signal, and a callback per retry.
 * @returns What the operation returned.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { retryTransient } from "./transient.ts";
 * const result = await retryTransient((attempt) => {
 *   if (attempt === 1) throw new TypeError("connection reset");
 *   return Promise.resolve(attempt);
 * });
 * assert.equal(result, 2);
 * ```
 */
export async function retryTransient<T>(
  task: (attempt: number) => Promise<T>,
  options: RetryTransientOptions = {},
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 5);
  let refusals = 0;
  for (let attempt = 1;; attempt++) {
    try {
      return await task(attempt);
    } catch (error) {
      // A status that outlasted the opener's own retries (or a lost upload session) gets one
      // more go; bytes damaged or cut on the way get every attempt.
      const refused = error instanceof RegistryError && ++refusals > 1;
      if (
        attempt >= attempts || refused ||
        !isTransientError(error, options.signal)
      ) {
        throw error;
      }
      options.onRetry?.(error, attempt);
    }
  }
}
