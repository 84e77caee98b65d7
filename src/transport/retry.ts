/**
 * Retries of transient failures with exponential backoff and full jitter, honouring
 * `Retry-After`.
 *
 * @module
 */
import { isReplayable, replayRequest, type Transport } from "./request_body.ts";
import { isNetworkError } from "./transient.ts";
import { redactSecrets, redactUrl, retryAfterErrorOf } from "./errors.ts";

/** What a retry is about to do, for logs and tests. */
export interface RetryEvent {
  /** The request being retried (its URL may hold no secrets: the opener redacts before logging). */
  readonly request: Request;
  /** The attempt that failed, from 1; the next one is `attempt + 1`. */
  readonly attempt: number;
  /** Attempts in all, the first included. */
  readonly attempts: number;
  /** How long the next attempt waits, in milliseconds. */
  readonly delay: number;
  /** The status that caused the retry, when there was a response. */
  readonly status?: number;
  /** The status text that came with `status`. */
  readonly statusText?: string;
  /** The network error that caused the retry, when there was no response. */
  readonly error?: unknown;
}

/** When and how to retry. Every field has a default in {@linkcode DEFAULT_RETRY_POLICY}. */
export interface RetryPolicy {
  /**
   * Attempts in all, the first included.
   * @default {5}
   */
  readonly attempts?: number;
  /**
   * Base of the exponential backoff in milliseconds: attempt n waits up to `base * 2^(n-1)`.
   * @default {500}
   */
  readonly baseDelay?: number;
  /**
   * Longest wait in milliseconds, for backoff and for `Retry-After` alike.
   * @default {30000}
   */
  readonly maxDelay?: number;
  /**
   * Longest `Retry-After` waited for, in milliseconds. A response asking for longer (a rate
   * limit of hours) is not retried: the request fails at once with a `RetryAfterError` saying
   * when to come back.
   * @default {60000}
   */
  readonly maxRetryAfter?: number;
  /**
   * Statuses that are retried.
   * @default {[408, 429, 500, 502, 503, 504]}
   */
  readonly statuses?: readonly number[];
  /** Called before each retry, before the wait; {@linkcode describeRetry} makes a line of it. */
  readonly onRetry?: (event: RetryEvent) => void;
  /**
   * Waits; injectable so that tests do not sleep.
   * @default {a timer that an abort signal cuts short}
   */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /**
   * A random number in [0, 1) for the jitter.
   * @default {Math.random}
   */
  readonly random?: () => number;
  /**
   * The clock, in milliseconds, used to read `Retry-After` dates.
   * @default {Date.now}
   */
  readonly now?: () => number;
}

/** The defaults of {@linkcode RetryPolicy}. */
export const DEFAULT_RETRY_POLICY: {
  readonly attempts: number;
  readonly baseDelay: number;
  readonly maxDelay: number;
  readonly maxRetryAfter: number;
  readonly statuses: readonly number[];
} = {
  attempts: 5,
  baseDelay: 500,
  maxDelay: 30_000,
  maxRetryAfter: 60_000,
  statuses: [408, 429, 500, 502, 503, 504],
};

/**
 * Reads `Retry-After` as seconds or as an HTTP date.
 *
 * @param value The header value.
 * @param now The current time in milliseconds.
 * @returns The wait in milliseconds, or undefined when the header is absent or unreadable.
 *
 * @example Both forms
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRetryAfter } from "./retry.ts";
 * assert.equal(parseRetryAfter("3", 0), 3000);
 * assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6000);
 * assert.equal(parseRetryAfter("soon", 0), undefined);
 * ```
 */
export function parseRetryAfter(
  value: string | null,
  now: number,
): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

function sleepFor(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Wraps a transport so that network errors and transient statuses (408, 429, 5xx gateways) are
 * retried with exponential backoff and full jitter, waiting what `Retry-After` asks (seconds or
 * an HTTP date; capped at `maxDelay`). A `Retry-After` longer than `maxRetryAfter` is not waited
 * for: the request fails at once with a `RetryAfterError` that says when to come back. Network
 * errors that sending again cannot fix (a `NetworkError` that is not `retryable`: a name that
 * does not resolve, a refused certificate) are thrown at once. Other statuses are returned at
 * once. A request whose body is a one-shot stream is sent once:
 * build uploads with `createRequest` and a `BlobSource` so that they can be replayed. When the
 * attempts run out, the last response is returned (so `ensureStatus` reports it) or the last
 * network error is thrown unchanged.
 *
 * @param next The transport to retry.
 * @param policy When and how to retry.
 * @returns The retrying transport.
 *
 * @example Retry a 503 once
 * ```ts
 * import assert from "node:assert/strict";
 * import { withRetry } from "./retry.ts";
 * let calls = 0;
 * const flaky = (_request: Request) =>
 *   Promise.resolve(new Response(null, { status: ++calls === 1 ? 503 : 200 }));
 * const transport = withRetry(flaky, { sleep: () => Promise.resolve() });
 * assert.equal((await transport(new Request("http://r/v2/"))).status, 200);
 * assert.equal(calls, 2);
 * ```
 */
export function withRetry(
  next: Transport,
  policy: RetryPolicy = {},
): Transport {
  const attempts = Math.max(
    1,
    policy.attempts ?? DEFAULT_RETRY_POLICY.attempts,
  );
  const baseDelay = policy.baseDelay ?? DEFAULT_RETRY_POLICY.baseDelay;
  const maxDelay = policy.maxDelay ?? DEFAULT_RETRY_POLICY.maxDelay;
  const maxRetryAfter = policy.maxRetryAfter ??
    DEFAULT_RETRY_POLICY.maxRetryAfter;
  const statuses = policy.statuses ?? DEFAULT_RETRY_POLICY.statuses;
  const sleep = policy.sleep ?? sleepFor;
  const random = policy.random ?? Math.random;
  const now = policy.now ?? Date.now;

  return async function retrying(request: Request): Promise<Response> {
    const replayable = isReplayable(request);
    for (let attempt = 1;; attempt++) {
      const last = attempt >= attempts || !replayable;
      // Keep the original untouched while more attempts may follow: each attempt sends a copy.
      const sending = last ? request : replayRequest(request);
      let response: Response;
      try {
        response = await next(sending);
      } catch (error) {
        if (last || !isNetworkError(error) || request.signal.aborted) {
          throw error;
        }
        const delay = backoff(attempt);
        policy.onRetry?.({ request, attempt, attempts, delay, error });
        await sleep(delay, request.signal);
        continue;
      }
      if (!statuses.includes(response.status)) return response;
      const clock = now();
      const retryAfter = parseRetryAfter(
        response.headers.get("retry-after"),
        clock,
      );
      if (retryAfter !== undefined && retryAfter > maxRetryAfter) {
        throw await retryAfterErrorOf(
          request,
          response,
          retryAfter,
          maxRetryAfter,
          clock,
        );
      }
      if (last) return response;
      const delay = retryAfter === undefined
        ? backoff(attempt)
        : Math.min(retryAfter, maxDelay);
      await response.body?.cancel();
      policy.onRetry?.({
        request,
        attempt,
        attempts,
        delay,
        status: response.status,
        statusText: response.statusText,
      });
      await sleep(delay, request.signal);
    }
  };

  function backoff(attempt: number): number {
    return Math.floor(
      random() * Math.min(maxDelay, baseDelay * 2 ** (attempt - 1)),
    );
  }
}

/** A wait as it reads in a line: `0.4 s`, `12 s`. */
function formatWait(ms: number): string {
  const seconds = ms / 1000;
  return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
}

/**
 * One line about a retry, for a log or a terminal: what failed (the request, redacted, and the
 * status or the error), the wait and the attempt coming, e.g. `GET https://r/v2/: 503 Service
 * Unavailable; retrying in 1.2 s (attempt 2/5)`.
 *
 * @param event The retry, as {@linkcode RetryPolicy.onRetry} gets it.
 * @returns The line, without a newline.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeRetry } from "./retry.ts";
 * const request = new Request("https://r.example/v2/app/manifests/v1?token=abc");
 * assert.equal(
 *   describeRetry({ request, attempt: 1, attempts: 5, delay: 1234, status: 503, statusText: "Service Unavailable" }),
 *   "GET https://r.example/v2/app/manifests/v1?token=REDACTED: 503 Service Unavailable; retrying in 1.2 s (attempt 2/5)",
 * );
 * ```
 */
export function describeRetry(event: RetryEvent): string {
  const what = event.status !== undefined
    ? `${event.request.method} ${
      redactUrl(event.request.url)
    }: ${event.status}${event.statusText ? ` ${event.statusText}` : ""}`
    : describeFailure(event.request, event.error);
  return `${what}; retrying in ${formatWait(event.delay)} (attempt ${
    event.attempt + 1
  }/${event.attempts})`;
}

/** An error as one line naming the request: its own message when that names it already. */
function describeFailure(request: Request, error: unknown): string {
  const message = redactSecrets(
    String((error as Error)?.message ?? error),
  ).split("\n")[0];
  return message.startsWith(`${request.method} `)
    ? message
    : `${request.method} ${redactUrl(request.url)}: ${message}`;
}
