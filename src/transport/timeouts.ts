/**
 * How long a server may stay silent: connect, response-headers and idle-read timeouts, the
 * timer that enforces them one phase at a time, and a response body that fails when its bytes
 * stop coming. There is no deadline on a whole transfer: a large blob may take long, as long as
 * its bytes keep arriving.
 *
 * @module
 */
import type { TimeoutPhase } from "./errors.ts";
import { pendingView } from "../io/bytes.ts";

/**
 * How long a server may stay silent, in milliseconds; `0` or `Infinity` means no limit.
 * Every field has a default in {@linkcode DEFAULT_TIMEOUTS}.
 */
export interface Timeouts {
  /**
   * Making the connection. Requests sent by `fetch`, which does not tell when it has connected,
   * count connecting toward `headers`.
   * @default {30000}
   */
  readonly connect?: number;
  /**
   * From the end of the request (the last byte of its body) to the response headers; a registry
   * may take a while to verify a large upload before it answers. For requests sent by `fetch`
   * (everything but streamed uploads), from the start, connecting included.
   * @default {60000}
   */
  readonly headers?: number;
  /**
   * Between two chunks of a response body while it is being read, and between two chunks of an
   * upload the server accepts. Time the reader itself spends between reads does not count.
   * @default {30000}
   */
  readonly idle?: number;
}

/** The defaults of {@linkcode Timeouts}. */
export const DEFAULT_TIMEOUTS: Readonly<Required<Timeouts>> = {
  connect: 30_000,
  headers: 60_000,
  idle: 30_000,
};

/**
 * Fills in the defaults of {@linkcode Timeouts} and checks the values.
 *
 * @param timeouts The timeouts given, if any.
 * @returns Every timeout, in milliseconds.
 * @throws {RangeError} When a timeout is negative or not a number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveTimeouts } from "./timeouts.ts";
 * assert.deepEqual(resolveTimeouts({ idle: 500 }), { connect: 30_000, headers: 60_000, idle: 500 });
 * assert.throws(() => resolveTimeouts({ connect: -1 }), RangeError);
 * ```
 */
export function resolveTimeouts(timeouts: Timeouts = {}): Required<Timeouts> {
  const resolved = { ...DEFAULT_TIMEOUTS };
  for (const key of ["connect", "headers", "idle"] as const) {
    const value = timeouts[key];
    if (value === undefined) continue;
    if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
      throw new RangeError(
        `The ${key} timeout must be a number of milliseconds, 0 or more, got ${value}`,
      );
    }
    resolved[key] = value;
  }
  return resolved;
}

/** Tells whether a timeout limits anything (0 and Infinity do not). */
function limits(ms: number): boolean {
  return ms > 0 && Number.isFinite(ms);
}

/** A timer that neither keeps the process alive nor outlives its request (cleared by the caller). */
function unrefTimeout(
  callback: () => void,
  ms: number,
): ReturnType<typeof setTimeout> {
  const id = setTimeout(callback, ms);
  // Typed as Node's Timeout once node:* modules are typed; Deno's timer ids convert to numbers.
  Deno.unrefTimer(id as unknown as number);
  return id;
}

/** One request's timer: armed for one phase at a time, see {@linkcode createWatchdog}. */
export interface Watchdog {
  /** Starts the timer for a phase (replacing any running one); a timeout of 0 or Infinity starts none. */
  arm(phase: TimeoutPhase, ms: number): void;
  /** Stops the timer, if one runs. */
  disarm(): void;
}

/**
 * A timer for one request, armed while we wait on the server (connecting, for the headers, for
 * the server to take more of the body) and disarmed as soon as it answers. When a phase runs
 * out, `onStall` is told which one and its timeout, once.
 *
 * @param onStall Called when an armed phase runs out.
 * @returns The watchdog.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createWatchdog } from "./timeouts.ts";
 * const stalled = Promise.withResolvers<string>();
 * const watchdog = createWatchdog((phase, ms) => stalled.resolve(`${phase} ${ms}`));
 * watchdog.arm("connect", 10_000);
 * watchdog.disarm();
 * watchdog.arm("headers", 10);
 * // The watchdog's timer does not keep the process alive (a request in flight does).
 * const alive = setInterval(() => {}, 1000);
 * assert.equal(await stalled.promise, "headers 10");
 * clearInterval(alive);
 * ```
 */
export function createWatchdog(
  onStall: (phase: TimeoutPhase, ms: number) => void,
): Watchdog {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const disarm = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  return {
    arm(phase, ms) {
      disarm();
      if (!limits(ms)) return;
      timer = unrefTimeout(() => {
        timer = undefined;
        onStall(phase, ms);
      }, ms);
    },
    disarm,
  };
}

/** Bytes asked of a BYOB-capable body when the reader brings no buffer of its own. */
const DEFAULT_READ_SIZE = 64 * 1024;

/** Options of {@linkcode idleTimeoutBody}. */
export interface IdleTimeoutOptions {
  /** The idle timeout in milliseconds; 0 or Infinity watches nothing. */
  readonly idle: number;
  /** Cancels the request when a read stalls; returns the error the reader gets. */
  readonly onStall: () => unknown;
  /**
   * The request's signal: once it aborts, read pending or not, the body below is cancelled
   * (closing the connection) and the body errors with its reason. Deno's `fetch`
   * errors a body on abort only through its `Response` object, which a transport that hands
   * the body on in a new `Response` has dropped: without this, an aborted download went on to
   * the last byte.
   */
  readonly signal?: AbortSignal;
}

/**
 * Wraps a response body so that a read the server leaves unanswered for `idle` milliseconds
 * fails: the timer runs only while a read waits on the body (a slow reader is not a stalled
 * server) and restarts with every chunk. On a stall, `onStall` is called (it should cancel the
 * request and return the error to report), the body below is cancelled and the wrapper errors
 * with what `onStall` returned. A byte stream stays a byte stream (BYOB reads pass through, no
 * copy). An abort of `signal` cancels the body below and fails the reads with its reason.
 *
 * @param body The body to watch.
 * @param options The idle timeout, what to do on a stall, the request's signal.
 * @returns The watched body (`body` itself when the timeout is 0 or Infinity and there is no
 * signal).
 *
 * @example A body that sends one chunk, then nothing
 * ```ts
 * import assert from "node:assert/strict";
 * import { idleTimeoutBody } from "./timeouts.ts";
 * const silent = new ReadableStream<Uint8Array>({
 *   start(controller) { controller.enqueue(new Uint8Array([1])); },
 * });
 * const body = idleTimeoutBody(silent, { idle: 20, onStall: () => new Error("stalled") });
 * const reader = body.getReader();
 * assert.deepEqual((await reader.read()).value, new Uint8Array([1]));
 * // The timer does not keep the process alive (a request in flight does).
 * const alive = setInterval(() => {}, 1000);
 * await assert.rejects(reader.read(), /stalled/);
 * clearInterval(alive);
 * ```
 */
export function idleTimeoutBody(
  body: ReadableStream<Uint8Array>,
  options: IdleTimeoutOptions,
): ReadableStream<Uint8Array> {
  if (!limits(options.idle) && options.signal === undefined) return body;
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    return watchedDefaultStream(body.getReader(), options);
  }
  return watchedByteStream(byob, options);
}

/**
 * Runs one read from below with the idle timer armed (when the timeout limits anything). On a
 * stall, `fail` errors the stream and the body below is cancelled; the read's own failure after
 * that is of no interest (undefined).
 */
async function watchedRead<T>(
  options: IdleTimeoutOptions,
  below: { cancel(reason?: unknown): Promise<void> },
  fail: (error: unknown) => void,
  read: () => Promise<T>,
): Promise<T | undefined> {
  let stalled = false;
  const timer = limits(options.idle)
    ? unrefTimeout(() => {
      stalled = true;
      const error = options.onStall();
      fail(error);
      below.cancel(error).catch(() => {});
    }, options.idle)
    : undefined;
  try {
    const result = await read();
    return stalled ? undefined : result;
  } catch (error) {
    if (stalled) return undefined;
    throw options.signal?.aborted ? options.signal.reason : error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Calls `stop` with the reason once `signal` aborts (at once when it has), read pending or
 * not; returns the function that stops listening, for when the body ends or is cancelled.
 */
function whenAborted(
  signal: AbortSignal | undefined,
  stop: (reason: unknown) => void,
): () => void {
  if (signal === undefined) return () => {};
  if (signal.aborted) {
    stop(signal.reason);
    return () => {};
  }
  const onAbort = () => stop(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  return () => signal.removeEventListener("abort", onAbort);
}

function watchedByteStream(
  reader: ReadableStreamBYOBReader,
  options: IdleTimeoutOptions,
): ReadableStream<Uint8Array> {
  // Once stalled, aborted or cancelled, the stream wants no more answers from below.
  let finished = false;
  let release = () => {};
  return new ReadableStream({
    type: "bytes",
    start(controller: ReadableByteStreamController) {
      release = whenAborted(options.signal, (reason) => {
        if (finished) return;
        finished = true;
        controller.error(reason);
        reader.cancel(reason).catch(() => {});
      });
    },
    async pull(controller: ReadableByteStreamController) {
      const request = controller.byobRequest;
      const target = pendingView(controller, DEFAULT_READ_SIZE);
      const result = await watchedRead(options, reader, (error) => {
        finished = true;
        release();
        controller.error(error);
      }, () => reader.read(target));
      if (finished || result === undefined) return;
      if (result.done) {
        finished = true;
        release();
        controller.close();
        // After close, a pending BYOB read is answered with an empty view of its buffer.
        if (request && result.value) request.respondWithNewView(result.value);
      } else if (request) request.respondWithNewView(result.value);
      else controller.enqueue(result.value);
    },
    cancel(reason) {
      finished = true;
      release();
      return reader.cancel(reason);
    },
  });
}

function watchedDefaultStream(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  options: IdleTimeoutOptions,
): ReadableStream<Uint8Array> {
  let finished = false;
  let release = () => {};
  return new ReadableStream<Uint8Array>({
    start(controller) {
      release = whenAborted(options.signal, (reason) => {
        if (finished) return;
        finished = true;
        controller.error(reason);
        reader.cancel(reason).catch(() => {});
      });
    },
    async pull(controller) {
      const result = await watchedRead(options, reader, (error) => {
        finished = true;
        release();
        controller.error(error);
      }, () => reader.read());
      if (finished || result === undefined) return;
      if (result.done) {
        finished = true;
        release();
        controller.close();
      } else controller.enqueue(result.value);
    },
    cancel(reason) {
      finished = true;
      release();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
