/**
 * The bottom transport: `fetch` for everything, except streamed uploads, which go through
 * `node:http`/`node:https` so that they carry `Content-Length`. Both paths enforce the
 * {@linkcode Timeouts}: a server that does not connect, does not answer, stops reading an upload
 * or stops sending a body fails the request with a `TimeoutError` naming the phase.
 *
 * Deno's `fetch` drops a caller's `Content-Length` when the body is a stream and sends
 * `Transfer-Encoding: chunked` instead; the distribution spec asks for `Content-Length` on a
 * monolithic PUT, and some registries and proxies refuse chunked uploads.
 *
 * @module
 */
import { createBufferFiller } from "../io/bytes.ts";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import { requestSource, type Transport } from "./request_body.ts";
import { TimeoutError, type TimeoutPhase } from "./errors.ts";
import {
  createWatchdog,
  idleTimeoutBody,
  type IdleTimeoutOptions,
  resolveTimeouts,
  type Timeouts,
  type Watchdog,
} from "./timeouts.ts";

/** Statuses whose responses never have a body. */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/** Options of {@linkcode createHttpTransport}. */
export interface HttpTransportOptions {
  /**
   * How long a server may stay silent while connecting, before answering and between bytes.
   * @default {DEFAULT_TIMEOUTS}
   */
  readonly timeouts?: Timeouts;
}

/**
 * Builds the bottom transport, which sends one request without following redirects (the redirect
 * layer does that): streamed bodies made by `createRequest` with a `BlobSource` go out with
 * `Content-Length` through `node:http`, everything else through `fetch`. A server that stays
 * silent longer than the {@linkcode Timeouts} allow (connecting, before the response headers,
 * not reading the upload, between chunks of the response body while it is read) fails the
 * request, or the body's read, with a `TimeoutError`; the request is cancelled. The request's
 * own signal still aborts it.
 *
 * @param options The timeouts.
 * @returns The transport; a 3xx is returned as it is.
 *
 * @example A server that sends headers and then nothing
 * ```ts
 * import assert from "node:assert/strict";
 * import { createHttpTransport } from "./http_transport.ts";
 * import { TimeoutError } from "./errors.ts";
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
 *   new Response(new ReadableStream({ start(c) { c.enqueue(new Uint8Array([1])); } })));
 * const transport = createHttpTransport({ timeouts: { idle: 100 } });
 * const response = await transport(new Request(`http://127.0.0.1:${server.addr.port}/v2/`));
 * const error = await response.arrayBuffer().catch((e) => e);
 * assert.ok(error instanceof TimeoutError);
 * assert.equal(error.phase, "body");
 * ```
 */
export function createHttpTransport(
  options: HttpTransportOptions = {},
): Transport {
  const timeouts = resolveTimeouts(options.timeouts);
  return function sendOne(request: Request): Promise<Response> {
    const source = requestSource(request);
    if (source && request.body !== null) {
      return sendWithContentLength(request, source.size, timeouts);
    }
    return sendWithFetch(request, timeouts);
  };
}

let withDefaults: Transport | undefined;

/**
 * The bottom transport with the default timeouts: {@linkcode createHttpTransport} with no
 * options.
 *
 * @param request The request.
 * @returns The response; a 3xx is returned as it is.
 *
 * @example Send a request to a local server
 * ```ts
 * import assert from "node:assert/strict";
 * import { httpTransport } from "./http_transport.ts";
 * import { createRequest, fileSource } from "./request_body.ts";
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) =>
 *   new Response(request.headers.get("content-length")));
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "0123456789");
 * const url = `http://127.0.0.1:${server.addr.port}/upload`;
 * const response = await httpTransport(createRequest(url, { method: "PUT", body: await fileSource(path) }));
 * assert.equal(await response.text(), "10");
 * await Deno.remove(path);
 * ```
 */
export function httpTransport(request: Request): Promise<Response> {
  withDefaults ??= createHttpTransport();
  return withDefaults(request);
}

/** The error a stalled phase of a request fails with. */
function stalled(
  request: Request,
  phase: TimeoutPhase,
  timeout: number,
): TimeoutError {
  return new TimeoutError({
    method: request.method,
    url: request.url,
    phase,
    timeout,
  });
}

/**
 * `fetch`, with the headers timeout (connecting included: `fetch` does not tell when it has
 * connected) and the idle timeout on the body; a stall aborts the fetch.
 */
async function sendWithFetch(
  request: Request,
  timeouts: Required<Timeouts>,
): Promise<Response> {
  const cancel = new AbortController();
  const watchdog = createWatchdog((phase, ms) =>
    cancel.abort(stalled(request, phase, ms))
  );
  watchdog.arm("headers", timeouts.headers);
  let response: Response;
  try {
    response = await fetch(request, {
      redirect: "manual",
      signal: AbortSignal.any([request.signal, cancel.signal]),
    });
  } catch (error) {
    throw cancel.signal.aborted && !request.signal.aborted
      ? cancel.signal.reason
      : error;
  } finally {
    watchdog.disarm();
  }
  if (response.body === null || NULL_BODY_STATUSES.has(response.status)) {
    return response;
  }
  const body = idleTimeoutBody(response.body, {
    idle: timeouts.idle,
    onStall: () => {
      const error = stalled(request, "body", timeouts.idle);
      cancel.abort(error);
      return error;
    },
    signal: request.signal,
  });
  return withBody(response, body, request.url);
}

/** The same response with another body (status, headers and URL kept). */
function withBody(
  response: Response,
  body: ReadableStream<Uint8Array>,
  url: string,
): Response {
  const copy = new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
  Object.defineProperty(copy, "url", { value: response.url || url });
  return copy;
}

/**
 * `node:http(s)` with `Content-Length`: the watchdog is armed for connecting, for each wait on
 * the server to take more of the body, and from the body's end to the response headers; the
 * response body has the idle timeout. A stall destroys the request.
 */
function sendWithContentLength(
  request: Request,
  size: number,
  timeouts: Required<Timeouts>,
): Promise<Response> {
  const url = new URL(request.url);
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const headers: Record<string, string> = {};
  request.headers.forEach((value, key) => {
    headers[key] = value;
  });
  headers["content-length"] = String(size);
  delete headers["transfer-encoding"];
  return new Promise<Response>((resolve, reject) => {
    let answered = false;
    const watchdog = createWatchdog((phase, ms) => {
      const error = stalled(request, phase, ms);
      reject(error);
      outgoing.destroy(error);
    });
    const outgoing = send(url, {
      method: request.method,
      headers,
      signal: request.signal,
    }, (incoming: IncomingMessage) => {
      answered = true;
      watchdog.disarm();
      resolve(toResponse(request, incoming, {
        idle: timeouts.idle,
        onStall: () => {
          const error = stalled(request, "body", timeouts.idle);
          outgoing.destroy(error);
          return error;
        },
        signal: request.signal,
      }));
    });
    watchdog.arm("connect", timeouts.connect);
    outgoing.on("error", (error: Error) => {
      watchdog.disarm();
      reject(
        request.signal.aborted
          ? request.signal.reason
          : error instanceof TimeoutError
          ? error
          : new TypeError(
            `Cannot send ${request.method} ${url.origin}${url.pathname}: ${error.message}`,
            { cause: error },
          ),
      );
    });
    onConnected(outgoing, () => {
      watchdog.disarm();
      // Once the server has answered, it owes us nothing more for the upload.
      const waiting: Watchdog = {
        arm: (phase, ms) => answered || watchdog.arm(phase, ms),
        disarm: () => answered || watchdog.disarm(),
      };
      writeBody(request.body!, outgoing, size, waiting, timeouts.idle)
        .then(() => waiting.arm("headers", timeouts.headers))
        .catch((error) => outgoing.destroy(error));
    });
  });
}

/** Calls `then` once the request's socket is connected (at once for a reused socket). */
function onConnected(
  outgoing: ReturnType<typeof httpRequest>,
  then: () => void,
): void {
  outgoing.once("socket", (socket: Socket) => {
    if (socket.connecting) socket.once("connect", then);
    else then();
  });
}

/** Upload bodies are read this much at a time, into a few reused buffers. */
const UPLOAD_CHUNK_SIZE = 1 << 20;

async function writeBody(
  body: ReadableStream<Uint8Array>,
  outgoing: ReturnType<typeof httpRequest>,
  size: number,
  watchdog: Watchdog,
  idle: number,
): Promise<void> {
  // Buffers go back to the pool once node:http has flushed them, so an upload holds two or
  // three 1 MiB buffers however large it is (a new chunk per read left the GC behind).
  const filler = createBufferFiller(body);
  const pool: ArrayBuffer[] = [];
  let sent = 0;
  for (;;) {
    const buffer = pool.pop() ?? new ArrayBuffer(UPLOAD_CHUNK_SIZE);
    const chunk = await filler.fill(new Uint8Array(buffer));
    if (chunk.byteLength === 0) break;
    sent += chunk.byteLength;
    if (sent > size) {
      await filler.cancel().catch(() => {});
      throw new RangeError(
        `Cannot upload: the body is longer than its declared size ${size}`,
      );
    }
    const flushed = outgoing.write(chunk, () => pool.push(chunk.buffer));
    if (!flushed) {
      // The server is not taking the bytes as fast as they come: it has `idle` to take more.
      watchdog.arm("upload", idle);
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          outgoing.off("error", onError);
          resolve();
        };
        const onError = (error: Error) => {
          outgoing.off("drain", onDrain);
          reject(error);
        };
        outgoing.once("drain", onDrain);
        outgoing.once("error", onError);
      });
      watchdog.disarm();
    }
  }
  if (sent !== size) {
    throw new RangeError(
      `Cannot upload: the body has ${sent} bytes but its declared size is ${size}`,
    );
  }
  outgoing.end();
}

function toResponse(
  request: Request,
  incoming: IncomingMessage,
  watch: IdleTimeoutOptions,
): Response {
  const headers = new Headers();
  for (const [key, value] of Object.entries(incoming.headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) {
      headers.append(key, item);
    }
  }
  const status = incoming.statusCode ?? 0;
  const empty = request.method === "HEAD" || NULL_BODY_STATUSES.has(status);
  if (empty) incoming.resume();
  const body = empty ? null : idleTimeoutBody(
    Readable.toWeb(incoming) as unknown as ReadableStream<Uint8Array>,
    watch,
  );
  const response = new Response(body, {
    status,
    statusText: incoming.statusMessage ?? "",
    headers,
  });
  Object.defineProperty(response, "url", { value: request.url });
  return response;
}

/** The default bottom transport, typed as a {@linkcode Transport}. */
export const DEFAULT_TRANSPORT: Transport = httpTransport;
