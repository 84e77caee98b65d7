/**
 * Which failures are worth trying again: one place that decides, for the opener's request
 * retries and for the operation-level retries of uploads, downloads into the stage and copies.
 *
 * @module
 */
import { DigestMismatchError } from "../oci/digest.ts";
import {
  redactSecrets,
  RegistryError,
  RetryAfterError,
  TimeoutError,
} from "./errors.ts";
import { NetworkError } from "./network_errors.ts";

/**
 * Tells whether an error means a request never got a full answer (connection refused, reset,
 * cut short, stalled), so that sending it again may succeed. Transports report these as
 * `TypeError` (as `fetch` does), as Deno's connection errors, or as a `TimeoutError` when the
 * server stayed silent too long; an abort is never one. A {@linkcode NetworkError} is one when it
 * is `retryable`: a name that does not resolve or a refused certificate will not get better.
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
 *
 * @example What retrying cannot fix
 * ```ts
 * import assert from "node:assert/strict";
 * import { isNetworkError } from "./transient.ts";
 * import { NetworkError } from "./network_errors.ts";
 * const url = "https://nonexistent.invalid/v2/";
 * assert.equal(isNetworkError(new NetworkError({ method: "GET", url, kind: "dns" })), false);
 * assert.equal(isNetworkError(new NetworkError({ method: "GET", url, kind: "refused" })), true);
 * ```
 */
export function isNetworkError(error: unknown): boolean {
  if (error instanceof DOMException && error.name === "AbortError") {
    return false;
  }
  if (error instanceof NetworkError) return error.retryable;
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
 * 401, 403 or 404 of the repository is not transient, nor is a `RetryAfterError` (the registry
 * asked to come back later than retries wait), nor a network error retrying cannot fix, nor
 * anything after `signal` was aborted.
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
  if (error instanceof RetryAfterError) return false;
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
  /**
   * Narrows the transient errors that start the task again, e.g. to bytes cut off or damaged
   * on the way (what the opener, which retries whole responses, cannot retry).
   * @default {every transient error}
   */
  readonly retryOn?: (error: unknown) => boolean;
  /**
   * Told before each new attempt (which starts at once), with the error that ended the previous
   * one, that attempt's number (from 1) and the attempts in all.
   */
  readonly onRetry?: (
    error: unknown,
    attempt: number,
    attempts: number,
  ) => void;
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
        !isTransientError(error, options.signal) ||
        (options.retryOn !== undefined && !options.retryOn(error))
      ) {
        throw error;
      }
      options.onRetry?.(error, attempt, attempts);
    }
  }
}

/**
 * One line about a whole operation started again by {@linkcode retryTransient}: what failed
 * (the error's first line, redacted; errors of this library name their request) and the attempt
 * coming, which starts at once, e.g. `PUT https://r/v2/app/blobs/uploads/1: 404 Not Found:
 * BLOB_UPLOAD_UNKNOWN: …; starting again (attempt 2/5)`.
 *
 * @param error The error that ended the attempt.
 * @param attempt The attempt that failed, from 1.
 * @param attempts Attempts in all.
 * @returns The line, without a newline.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeTransientRetry } from "./transient.ts";
 * assert.equal(
 *   describeTransientRetry(new TypeError("error reading a body"), 1, 5),
 *   "error reading a body; starting again (attempt 2/5)",
 * );
 * ```
 */
export function describeTransientRetry(
  error: unknown,
  attempt: number,
  attempts: number,
): string {
  const message = redactSecrets(String((error as Error)?.message ?? error))
    .split("\n")[0];
  return `${message}; starting again (attempt ${attempt + 1}/${attempts})`;
}
