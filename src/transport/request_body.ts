/**
 * Request bodies that can be sent more than once: a retry, a replay after a login or a 307
 * redirect each open the source again instead of buffering the first copy.
 *
 * @module
 */

import { fileBytes } from "../io/bytes.ts";

/**
 * Bytes that can be opened more than once, so that a failed upload can start again from the
 * first byte. `size` is sent as `Content-Length`.
 */
export interface BlobSource {
  /** The number of bytes `open()` yields. */
  readonly size: number;
  /** Opens a fresh stream over all the bytes. */
  open(): ReadableStream<Uint8Array>;
}

/** A request body: bytes or text sent as they are, or a re-openable {@linkcode BlobSource}. */
export type RequestBody = Uint8Array | string | BlobSource;

/** A function with the shape of `fetch`: every transport layer is one. */
export type Transport = (request: Request) => Promise<Response>;

const SOURCES = new WeakMap<Request, BlobSource>();

/**
 * Wraps bytes in memory as a {@linkcode BlobSource}.
 *
 * @param bytes The bytes, or a string encoded as UTF-8.
 * @returns A source that can be opened any number of times.
 *
 * @example A source over bytes
 * ```ts
 * import assert from "node:assert/strict";
 * import { bytesSource } from "./request_body.ts";
 * const source = bytesSource("hello");
 * assert.equal(source.size, 5);
 * assert.equal(await new Response(source.open()).text(), "hello");
 * assert.equal(await new Response(source.open()).text(), "hello");
 * ```
 */
export function bytesSource(bytes: Uint8Array | string): BlobSource {
  const data = typeof bytes === "string"
    ? new TextEncoder().encode(bytes)
    : bytes;
  return {
    size: data.byteLength,
    open(): ReadableStream<Uint8Array> {
      return new ReadableStream({
        start(controller) {
          if (data.byteLength > 0) controller.enqueue(data);
          controller.close();
        },
      });
    },
  };
}

/**
 * A {@linkcode BlobSource} over a file: every `open()` reopens the file, so an upload can be
 * replayed byte for byte without keeping it in memory.
 *
 * @param path The file.
 * @returns The source; its size is the file's size now.
 * @throws {Deno.errors.NotFound} When the file does not exist.
 *
 * @example Read a file twice
 * ```ts
 * import assert from "node:assert/strict";
 * import { fileSource } from "./request_body.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "layer");
 * const source = await fileSource(path);
 * assert.equal(source.size, 5);
 * assert.equal(await new Response(source.open()).text(), "layer");
 * await Deno.remove(path);
 * ```
 */
export async function fileSource(path: string | URL): Promise<BlobSource> {
  const { size } = await Deno.stat(path);
  return {
    size,
    open(): ReadableStream<Uint8Array> {
      // Opened on first read, so that an unused source holds no file handle; read 1 MiB at a
      // time into the reader's own buffers.
      return fileBytes(() => Deno.open(path));
    },
  };
}

/**
 * Builds a `Request` whose body can be replayed: the source is remembered so that
 * {@linkcode replayRequest} can open it again for a retry or a redirect.
 *
 * @param url Where to send the request.
 * @param init As for `new Request`, with `body` given as bytes, text or a {@linkcode BlobSource}.
 * @returns The request.
 *
 * @example A replayable PUT
 * ```ts
 * import assert from "node:assert/strict";
 * import { bytesSource, createRequest, replayRequest } from "./request_body.ts";
 * const request = createRequest("http://127.0.0.1/upload", { method: "PUT", body: bytesSource("abc") });
 * assert.equal(await request.text(), "abc");
 * assert.equal(await replayRequest(request).text(), "abc");
 * ```
 */
export function createRequest(
  url: string | URL,
  init: Omit<RequestInit, "body"> & { body?: RequestBody } = {},
): Request {
  const { body, ...rest } = init;
  if (body === undefined) return new Request(url, rest);
  const source = typeof body === "string" || body instanceof Uint8Array
    ? bytesSource(body)
    : body;
  return withSource(new Request(url, { ...rest, body: source.open() }), source);
}

function withSource(request: Request, source: BlobSource): Request {
  SOURCES.set(request, source);
  return request;
}

/**
 * The re-openable source behind a request made by {@linkcode createRequest}, if any.
 *
 * @param request The request.
 * @returns The source, or undefined for a request without one.
 *
 * @example Find the size to send as Content-Length
 * ```ts
 * import assert from "node:assert/strict";
 * import { bytesSource, createRequest, requestSource } from "./request_body.ts";
 * const request = createRequest("http://127.0.0.1/u", { method: "PUT", body: bytesSource("abc") });
 * assert.equal(requestSource(request)?.size, 3);
 * ```
 */
export function requestSource(request: Request): BlobSource | undefined {
  return SOURCES.get(request);
}

/**
 * Tells whether a request can be sent again: it has no body, or its body has a source.
 *
 * @param request The request.
 * @returns True when {@linkcode replayRequest} can make a fresh copy.
 *
 * @example A plain stream body cannot be replayed
 * ```ts
 * import assert from "node:assert/strict";
 * import { isReplayable } from "./request_body.ts";
 * assert.ok(isReplayable(new Request("http://x/", { method: "GET" })));
 * assert.ok(!isReplayable(new Request("http://x/", { method: "PUT", body: new Response("x").body })));
 * ```
 */
export function isReplayable(request: Request): boolean {
  return request.body === null || SOURCES.has(request);
}

/**
 * Makes a fresh copy of a request, reopening its body source, optionally with changes.
 *
 * @param request A request that {@linkcode isReplayable}.
 * @param init Changes: another URL, method, headers, or no body (`body: null`).
 * @returns A new request that has not been sent.
 * @throws {TypeError} When the request's body cannot be opened again.
 *
 * @example Replay with another header
 * ```ts
 * import assert from "node:assert/strict";
 * import { createRequest, replayRequest } from "./request_body.ts";
 * const request = createRequest("http://127.0.0.1/u", { method: "PUT", body: "abc" });
 * const again = replayRequest(request, { headers: { "x-try": "2" } });
 * assert.equal(again.headers.get("x-try"), "2");
 * assert.equal(await again.text(), "abc");
 * ```
 */
export function replayRequest(
  request: Request,
  init: {
    url?: string | URL;
    method?: string;
    headers?: HeadersInit;
    body?: null;
  } = {},
): Request {
  const source = init.body === null ? undefined : SOURCES.get(request);
  if (request.body !== null && init.body !== null && !source) {
    throw new TypeError(
      `Cannot send ${request.method} ${request.url} again: its body is a one-shot stream (build it with createRequest and a BlobSource)`,
    );
  }
  const copy = new Request(init.url ?? request.url, {
    method: init.method ?? request.method,
    headers: init.headers ?? request.headers,
    signal: request.signal,
    redirect: request.redirect,
    body: source ? source.open() : null,
  });
  return source ? withSource(copy, source) : copy;
}
