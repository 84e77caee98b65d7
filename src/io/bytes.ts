/**
 * Byte helpers shared by the client and the server: joining chunks, reading a stream into
 * memory only up to a limit (manifests, error bodies), filling reused buffers, and byte streams
 * over files and buffers.
 *
 * @module
 */

/**
 * Joins chunks into one array.
 *
 * @param chunks The chunks, in order.
 * @returns Their bytes in one array.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { concatBytes } from "./bytes.ts";
 * assert.deepEqual(concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]), new Uint8Array([1, 2, 3]));
 * ```
 */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  const size = chunks.reduce((total, chunk) => total + chunk.byteLength, 0);
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/**
 * Reads a stream into memory, stopping as soon as it has more than `limit` bytes.
 *
 * @param stream The bytes (null reads as empty).
 * @param limit The most bytes accepted.
 * @param signal Stops the read: the stream is cancelled and the promise rejects with the reason.
 * @returns The bytes, or undefined when there were more than `limit` (the stream is cancelled).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readAtMost } from "./bytes.ts";
 * assert.equal((await readAtMost(new Response("abc").body, 3))?.byteLength, 3);
 * assert.equal(await readAtMost(new Response("abcd").body, 3), undefined);
 * ```
 */
export async function readAtMost(
  stream: ReadableStream<Uint8Array> | null,
  limit: number,
  signal?: AbortSignal,
): Promise<Uint8Array | undefined> {
  if (stream === null) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const below = stream.getReader();
  const reader = abortableReads(below, () => below.read(), signal);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return concatBytes(chunks);
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
}

/**
 * Makes a reader give up on `signal`: once it aborts, whether a read is pending or not, the
 * stream below is cancelled with the reason (through the transports, that closes the
 * connection: cancelling is what reaches the socket, not the abort of a request whose
 * `Response` is gone) and the pending read, if any, and every later one reject with the
 * reason. The listener goes once the stream ends or is cancelled.
 */
function abortableReads<T>(
  reader: { cancel(reason?: unknown): Promise<void> },
  read: () => Promise<ReadableStreamReadResult<T>>,
  signal: AbortSignal | undefined,
): {
  read(): Promise<ReadableStreamReadResult<T>>;
  cancel(reason?: unknown): Promise<void>;
} {
  if (signal === undefined) {
    return { read, cancel: (reason) => reader.cancel(reason) };
  }
  let cancelled = false;
  let rejectPending: ((reason: unknown) => void) | undefined;
  const cancelBelow = (reason: unknown) => {
    if (cancelled) return Promise.resolve();
    cancelled = true;
    return reader.cancel(reason).catch(() => {});
  };
  const onAbort = () => {
    // Rejected first: the cancel answers the pending read below (as done) at once.
    rejectPending?.(signal.reason);
    cancelBelow(signal.reason);
  };
  const release = () => signal.removeEventListener("abort", onAbort);
  if (signal.aborted) cancelBelow(signal.reason);
  else signal.addEventListener("abort", onAbort, { once: true });
  return {
    async read() {
      if (signal.aborted) {
        await cancelBelow(signal.reason);
        throw signal.reason;
      }
      const { promise: aborted, reject } = Promise.withResolvers<never>();
      rejectPending = reject;
      try {
        const result = await Promise.race([read(), aborted]);
        if (result.done) release();
        return result;
      } catch (error) {
        release();
        throw error;
      } finally {
        rejectPending = undefined;
      }
    },
    cancel(reason) {
      release();
      return cancelBelow(reason);
    },
  };
}

/** Fills caller-supplied buffers from a stream, see {@linkcode createBufferFiller}. */
export interface BufferFiller {
  /**
   * Fills the view whole unless the stream ends, and returns the filled part (empty at the
   * end). A BYOB read moves the buffer: reuse the returned view's buffer, not the one given.
   */
  fill(view: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>>;
  /** Cancels the stream. */
  cancel(reason?: unknown): Promise<void>;
}

/** Options of {@linkcode createBufferFiller}. */
export interface BufferFillerOptions {
  /**
   * Stops the filling: once aborted, the source is cancelled with the reason (which reaches the
   * connection below a response body) and the pending fill and every later one reject with it.
   */
  readonly signal?: AbortSignal;
  /**
   * Told about each chunk of a (non-byte) stream once all its bytes are copied out: a caller
   * that owns the chunks may free their memory then.
   */
  readonly onConsumed?: (chunk: Uint8Array) => void;
}

/**
 * Reads a stream into caller-supplied buffers, whole: through a BYOB reader when the stream is
 * a byte stream (no copy; the buffer moves in and out), else by copying default chunks. Reusing
 * one or two large buffers this way avoids an allocation per chunk and the per-chunk cost of
 * 64 KiB reads downstream. With a `signal`, an abort cancels the source at once, also in the
 * middle of a fill (the buffer being filled is then lost to the caller).
 *
 * @param source The stream.
 * @param options An abort signal.
 * @returns The filler.
 *
 * @example Fill 4-byte buffers from a stream
 * ```ts
 * import assert from "node:assert/strict";
 * import { createBufferFiller } from "./bytes.ts";
 * const filler = createBufferFiller(new Response("abcdef").body!);
 * const first = await filler.fill(new Uint8Array(4));
 * assert.equal(new TextDecoder().decode(first), "abcd");
 * assert.equal(new TextDecoder().decode(await filler.fill(new Uint8Array(4))), "ef");
 * assert.equal((await filler.fill(new Uint8Array(4))).byteLength, 0);
 * ```
 *
 * @example An abort cancels the source and fails the fill
 * ```ts
 * import assert from "node:assert/strict";
 * import { createBufferFiller } from "./bytes.ts";
 * let cancelled: unknown;
 * const endless = new ReadableStream<Uint8Array>({ cancel(reason) { cancelled = reason; } });
 * const controller = new AbortController();
 * const filler = createBufferFiller(endless, { signal: controller.signal });
 * const fill = filler.fill(new Uint8Array(4));
 * controller.abort(new Error("stop"));
 * await assert.rejects(fill, /stop/);
 * assert.match(String(cancelled), /stop/);
 * ```
 */
export function createBufferFiller(
  source: ReadableStream<Uint8Array>,
  options: BufferFillerOptions = {},
): BufferFiller {
  let byob: ReadableStreamBYOBReader | undefined;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    byob = source.getReader({ mode: "byob" });
  } catch {
    reader = source.getReader();
  }
  const below = (byob ?? reader)!;
  let target: Uint8Array<ArrayBuffer> = new Uint8Array();
  const reads = abortableReads<Uint8Array>(
    below,
    () => byob ? byob.read(target) : reader!.read(),
    options.signal,
  );
  let left: Uint8Array | undefined;
  /** The chunk `left` is the rest of. */
  let chunk: Uint8Array | undefined;
  let done = false;
  return {
    async fill(view) {
      let buffer = view.buffer;
      const offset = view.byteOffset;
      let filled = 0;
      while (filled < view.byteLength && !done) {
        if (byob) {
          target = new Uint8Array(
            buffer,
            offset + filled,
            view.byteLength - filled,
          );
          const result = await reads.read();
          if (result.value) buffer = result.value.buffer as ArrayBuffer;
          if (result.done) done = true;
          else filled += result.value.byteLength;
          continue;
        }
        if (left === undefined || left.byteLength === 0) {
          const result = await reads.read();
          if (result.done) {
            done = true;
            break;
          }
          left = chunk = result.value;
        }
        const take = Math.min(left.byteLength, view.byteLength - filled);
        new Uint8Array(buffer, offset + filled, take).set(
          left.subarray(0, take),
        );
        left = left.subarray(take);
        filled += take;
        if (left.byteLength === 0 && chunk !== undefined) {
          options.onConsumed?.(chunk);
          chunk = undefined;
        }
      }
      return new Uint8Array(buffer, offset, filled);
    },
    cancel(reason) {
      return reads.cancel(reason);
    },
  };
}

/** Chunks of the byte streams made here: 64 KiB chunks cost about 1 s per GiB downstream. */
const BYTE_STREAM_CHUNK_SIZE = 1 << 20;

/**
 * A byte stream that fills each read's buffer with `fill`: a BYOB reader gets its own buffer
 * filled (no copy, no allocation), a default reader gets 1 MiB chunks. An empty fill ends the
 * stream; a fill that throws errors it with what was thrown.
 *
 * @param fill Fills the view (whole, unless the bytes end) and returns the filled part.
 * @param cancel Called when the reader cancels.
 * @returns The stream.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fillingStream } from "./bytes.ts";
 * let sent = false;
 * const stream = fillingStream((view) => {
 *   if (sent) return Promise.resolve(view.subarray(0, 0));
 *   sent = true;
 *   view.set([104, 105]);
 *   return Promise.resolve(view.subarray(0, 2));
 * }, () => {});
 * assert.equal(await new Response(stream).text(), "hi");
 * ```
 */
export function fillingStream(
  fill: (view: Uint8Array<ArrayBuffer>) => Promise<Uint8Array<ArrayBuffer>>,
  cancel: (reason: unknown) => Promise<void> | void,
): ReadableStream<Uint8Array> {
  let cancelled = false;
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: BYTE_STREAM_CHUNK_SIZE,
    async pull(controller: ReadableByteStreamController) {
      const request = controller.byobRequest!;
      const filled = await fill(request.view as Uint8Array<ArrayBuffer>);
      // A reader that cancelled meanwhile wants no answer.
      if (cancelled) return;
      if (filled.byteLength === 0) {
        controller.close();
      }
      // After close, the pending read is answered with an empty view of its buffer.
      request.respondWithNewView(filled);
    },
    cancel(reason) {
      cancelled = true;
      return cancel(reason);
    },
  });
}

/**
 * Where a byte stream's `pull` should read to: the view of the reader's pending BYOB request
 * (so the bytes land in the caller's buffer, no copy), or a new buffer of `size` bytes for a
 * default reader (then `enqueue` it).
 *
 * @param controller The byte stream's controller, inside `pull`.
 * @param size The size of the buffer when no BYOB request is pending.
 * @returns The view to fill.
 *
 * @example A default reader gets a fresh buffer
 * ```ts
 * import assert from "node:assert/strict";
 * import { pendingView } from "./bytes.ts";
 * let size = 0;
 * const stream = new ReadableStream({
 *   type: "bytes",
 *   pull(controller) {
 *     size = pendingView(controller, 16).byteLength;
 *     controller.close();
 *     controller.byobRequest?.respond(0);
 *   },
 * });
 * await stream.getReader().read();
 * assert.equal(size, 16);
 * ```
 */
export function pendingView(
  controller: ReadableByteStreamController,
  size: number,
): Uint8Array<ArrayBuffer> {
  const view = controller.byobRequest?.view;
  return view
    ? new Uint8Array(
      view.buffer as ArrayBuffer,
      view.byteOffset,
      view.byteLength,
    )
    : new Uint8Array(size);
}

/**
 * Passes a stream's bytes on as a byte stream, telling `onBytes` how many went by after each
 * chunk: progress reporting that keeps BYOB reads (and their reused buffers) working end to
 * end, where a `TransformStream` would hand out a new chunk per read. With a `signal`, an abort
 * cancels the source with the reason and errors the stream with it, a pending read included:
 * whatever reads the stream (an upload, a file write) stops within the read in progress.
 *
 * @param source The bytes.
 * @param onBytes Told the size of each chunk as it passes.
 * @param options An abort signal.
 * @returns The same bytes.
 *
 * @example Count the bytes of a stream
 * ```ts
 * import assert from "node:assert/strict";
 * import { tapBytes } from "./bytes.ts";
 * let seen = 0;
 * const stream = tapBytes(new Response("hello").body!, (n) => seen += n);
 * assert.equal(await new Response(stream).text(), "hello");
 * assert.equal(seen, 5);
 * ```
 *
 * @example Stop a stream that would never end
 * ```ts
 * import assert from "node:assert/strict";
 * import { tapBytes } from "./bytes.ts";
 * let cancelled = false;
 * const endless = new ReadableStream<Uint8Array>({
 *   async pull(c) {
 *     await new Promise((resolve) => setTimeout(resolve, 1));
 *     if (!cancelled) c.enqueue(new Uint8Array(1024));
 *   },
 *   cancel() { cancelled = true; },
 * });
 * const signal = AbortSignal.timeout(50);
 * const error = await new Response(tapBytes(endless, () => {}, { signal })).arrayBuffer()
 *   .catch((e) => e);
 * assert.equal(error.name, "TimeoutError");
 * assert.ok(cancelled);
 * ```
 */
export function tapBytes(
  source: ReadableStream<Uint8Array>,
  onBytes: (bytes: number) => void,
  options: BufferFillerOptions = {},
): ReadableStream<Uint8Array> {
  const filler = createBufferFiller(source, options);
  return fillingStream(async (view) => {
    const filled = await filler.fill(view);
    if (filled.byteLength > 0) onBytes(filled.byteLength);
    return filled;
  }, (reason) => filler.cancel(reason));
}

/**
 * A file's bytes as a byte stream read 1 MiB at a time (Deno's `file.readable` reads 64 KiB),
 * opened on the first read so that an unused stream holds no file handle, and closed at the
 * end or on cancel.
 *
 * @param open Opens the file (and seeks, for a range).
 * @param options `length`: read no more than this many bytes (the rest of the file by default).
 * @returns The file's bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fileBytes } from "./bytes.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "hello");
 * assert.equal(await new Response(fileBytes(() => Deno.open(path))).text(), "hello");
 * await Deno.remove(path);
 * ```
 */
export function fileBytes(
  open: () => Promise<Deno.FsFile>,
  options: { length?: number } = {},
): ReadableStream<Uint8Array> {
  let file: Deno.FsFile | undefined;
  let closed = false;
  let left = options.length ?? Infinity;
  const close = () => {
    if (!closed) {
      closed = true;
      file?.close();
    }
  };
  return fillingStream(async (view) => {
    if (left <= 0) close();
    if (closed) return view.subarray(0, 0);
    try {
      file ??= await open();
      const wanted = view.subarray(0, Math.min(view.byteLength, left));
      let filled = 0;
      while (filled < wanted.byteLength) {
        const read = await file.read(wanted.subarray(filled));
        if (read === null) {
          close();
          break;
        }
        filled += read;
      }
      left -= filled;
      return view.subarray(0, filled);
    } catch (error) {
      close();
      throw error;
    }
  }, close);
}

/**
 * A byte stream whose source is opened only when it is first read: for an API that must hand
 * out a stream at once (a re-openable upload source, say) while the bytes come from somewhere
 * that takes a request to open. A BYOB reader reads into its own buffer, without copies.
 *
 * With a `signal`, an abort before the first read means the source is never opened; an abort
 * later cancels it; either way the stream errors with the abort's reason.
 *
 * @param open Opens the bytes; called on the first read, at most once.
 * @param options An abort signal.
 * @returns The bytes.
 *
 * @example Open only when read
 * ```ts
 * import assert from "node:assert/strict";
 * import { openOnRead } from "./bytes.ts";
 * let opened = 0;
 * const stream = openOnRead(() => {
 *   opened++;
 *   return Promise.resolve(new Response("abc").body!);
 * });
 * assert.equal(opened, 0);
 * assert.equal(await new Response(stream).text(), "abc");
 * assert.equal(opened, 1);
 * ```
 */
export function openOnRead(
  open: () => Promise<ReadableStream<Uint8Array>>,
  options: BufferFillerOptions = {},
): ReadableStream<Uint8Array> {
  let chunks: BufferFiller | undefined;
  let cancelled = false;
  const { signal } = options;
  return fillingStream(async (view) => {
    if (chunks === undefined) {
      signal?.throwIfAborted();
      chunks = createBufferFiller(await open(), { signal });
      if (cancelled) {
        await chunks.cancel();
        return view.subarray(0, 0);
      }
    }
    return await chunks.fill(view);
  }, async (reason) => {
    cancelled = true;
    await chunks?.cancel(reason);
  });
}

/**
 * Frees a chunk's memory now rather than at the next garbage collection, when the chunk owns
 * its whole buffer (nothing else can see it): for bytes that are garbage as soon as they are
 * used, made faster than the collector runs (it lets tens of MiB of them pile up). A chunk
 * that is a view of a larger buffer, or whose buffer cannot be detached, is left alone.
 *
 * @param chunk Bytes no one will read again.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { freeChunk } from "./bytes.ts";
 * const chunk = new Uint8Array(1024);
 * freeChunk(chunk);
 * assert.equal(chunk.byteLength, 0);
 * const view = new Uint8Array(1024).subarray(1);
 * freeChunk(view);
 * assert.equal(view.byteLength, 1023);
 * ```
 */
export function freeChunk(chunk: Uint8Array): void {
  const buffer = chunk.buffer;
  if (
    buffer instanceof ArrayBuffer && chunk.byteOffset === 0 &&
    chunk.byteLength === buffer.byteLength && !buffer.resizable
  ) {
    try {
      buffer.transfer(0);
    } catch {
      // Not detachable (a Wasm memory's, say): the collector frees it later.
    }
  }
}
