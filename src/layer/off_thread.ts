/**
 * Decompression on a Worker, so that inflating a layer runs beside the tar reader, the digest
 * and the file writes instead of between them. Bounded both ways: the Worker holds at most
 * {@linkcode INPUT_AHEAD} input chunks, and sends at most {@linkcode OUTPUT_CREDIT_BYTES} ahead
 * of what was read (and one chunk, itself bounded by the decompressor as on the main thread);
 * a chunk's bytes are granted again only once the reader asks for the next.
 * Both run ahead so that the two threads work at once rather than in turn.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { type Compression, decompress } from "./compression.ts";
import { ZstdFormatError } from "./zstd.ts";
import { GzipFormatError } from "./gunzip.ts";
import { workerAllowed } from "./worker_url.ts";
import { createBufferFiller } from "../io/bytes.ts";

/**
 * Decompressed bytes the Worker may send before they are read. Gzip's inflate is the slower
 * side: more ahead gained nothing and cost RSS on bombs. Zstd's Worker (hashing too, for
 * extraction) is about as fast as the reader on average but not file by file: 4 MiB let the
 * two overlap (400 MiB tree: 1.05 s instead of 1.3, with the same peak RSS; 1 MiB was no
 * faster than hashing on the reader's thread, 8 MiB no faster than 4).
 */
const OUTPUT_CREDIT_BYTES: Record<"gzip" | "zstd", number> = {
  gzip: 1024 * 1024,
  zstd: 4 * 1024 * 1024,
};
/** Read bytes are granted back in steps this large (fewer messages). */
const CREDIT_STEP_BYTES = 256 * 1024;
/** Input is sent in pieces this large. */
const INPUT_CHUNK_BYTES = 1024 * 1024;
/** Input pieces sent to the Worker before it asks. */
const INPUT_AHEAD = 4;

/** What the Worker sends. */
type Reply =
  | { readonly type: "need" }
  | { readonly type: "output"; readonly chunk: Uint8Array }
  | { readonly type: "done"; readonly digest?: string }
  | { readonly type: "error"; readonly name: string; readonly message: string };

/** The Worker's error as the main thread would have thrown it. */
function errorOf(name: string, message: string): Error {
  if (name === "ZstdFormatError") return new ZstdFormatError(message);
  if (name === "GzipFormatError") return new GzipFormatError(message);
  const error = name === "TypeError"
    ? new TypeError(message)
    : name === "RangeError"
    ? new RangeError(message)
    : new Error(message);
  error.name = name;
  return error;
}

/**
 * Decompresses gzip or zstd on a Worker, or on this thread when no Worker can start ("none"
 * is the stream itself). The output chunks are the stream's own (they may be released once
 * read).
 *
 * @param stream The compressed bytes; its chunks are copied to the Worker, never taken.
 * @param compression How they are compressed.
 * @returns The decompressed bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compress } from "./compression.ts";
 * import { decompressOffThread } from "./off_thread.ts";
 * const text = "layer ".repeat(10_000);
 * const gz = compress(ReadableStream.from([new TextEncoder().encode(text)]), "gzip");
 * assert.equal(await new Response(decompressOffThread(gz, "gzip")).text(), text);
 * ```
 */
export function decompressOffThread(
  stream: ReadableStream<Uint8Array>,
  compression: Compression,
): ReadableStream<Uint8Array> {
  return offThread(stream, compression, false).stream;
}

/** Decompressed bytes and the SHA-256 of exactly those bytes, from {@linkcode decompressAndDigestOffThread}. */
export interface DigestedStream {
  /** The decompressed bytes (its chunks are its own, as {@linkcode decompressOffThread}'s). */
  readonly stream: ReadableStream<Uint8Array>;
  /**
   * `sha256:<hex>` of every byte `stream` gave, in order: it resolves once `stream` has closed
   * (all its bytes read). It rejects when `stream` errors or is cancelled (there is then no
   * digest of a whole stream); such a rejection is never unhandled, awaited or not.
   */
  readonly digest: Promise<string>;
}

/**
 * As {@linkcode decompressOffThread}, and the SHA-256 of the decompressed bytes computed where
 * they are decompressed: on the Worker (this thread is left the reading of them), or on this
 * thread when no Worker can start or its module fails to load. "none" is hashed here.
 *
 * @param stream The compressed bytes; its chunks are copied to the Worker, never taken.
 * @param compression How they are compressed.
 * @returns The decompressed bytes and the promise of their digest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createHash } from "node:crypto";
 * import { compress } from "./compression.ts";
 * import { decompressAndDigestOffThread } from "./off_thread.ts";
 * const bytes = new TextEncoder().encode("layer ".repeat(10_000));
 * const zst = compress(ReadableStream.from([bytes]), "zstd");
 * const { stream, digest } = decompressAndDigestOffThread(zst, "zstd");
 * assert.deepEqual(new Uint8Array(await new Response(stream).arrayBuffer()), bytes);
 * assert.equal(await digest, `sha256:${createHash("sha256").update(bytes).digest("hex")}`);
 * ```
 */
export function decompressAndDigestOffThread(
  stream: ReadableStream<Uint8Array>,
  compression: Compression,
): DigestedStream {
  const { stream: output, digest } = offThread(stream, compression, true);
  return { stream: output, digest: digest! };
}

/** A digest to be settled once: resolved at the stream's end, rejected on its error or cancel. */
interface PendingDigest {
  readonly promise: Promise<string>;
  resolve(digest: string): void;
  reject(reason: unknown): void;
}

function pendingDigest(): PendingDigest {
  const { promise, resolve, reject } = Promise.withResolvers<string>();
  // Marked handled: a caller that stops on the stream's own error need not await the digest.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** Why a cancelled stream has no digest. */
function cancelledError(reason: unknown): Error {
  return new Error(
    "Cannot digest the decompressed bytes: the stream was cancelled before its end",
    { cause: reason },
  );
}

/** `stream`, hashed on this thread as it is read. */
function digestedHere(stream: ReadableStream<Uint8Array>): DigestedStream {
  const hash = createHash("sha256");
  const pending = pendingDigest();
  const reader = stream.getReader();
  return {
    stream: new ReadableStream<Uint8Array>({
      async pull(controller) {
        let read: ReadableStreamReadResult<Uint8Array>;
        try {
          read = await reader.read();
        } catch (error) {
          pending.reject(error);
          throw error;
        }
        if (read.done) {
          pending.resolve(`sha256:${hash.digest("hex")}`);
          return controller.close();
        }
        hash.update(read.value);
        controller.enqueue(read.value);
      },
      async cancel(reason) {
        pending.reject(cancelledError(reason));
        await reader.cancel(reason);
      },
    }, { highWaterMark: 0 }),
    digest: pending.promise,
  };
}

/** Both of the above: the digest only when asked (the Worker hashes what it sends). */
function offThread(
  stream: ReadableStream<Uint8Array>,
  compression: Compression,
  digest: boolean,
): { stream: ReadableStream<Uint8Array>; digest?: Promise<string> } {
  /** Decompression on this thread, hashed here when asked. */
  const here = (
    input: ReadableStream<Uint8Array>,
  ): { stream: ReadableStream<Uint8Array>; digest?: Promise<string> } => {
    const output = decompress(input, compression);
    return digest ? digestedHere(output) : { stream: output };
  };
  if (compression === "none") return here(stream);
  const url = new URL("./inflate_worker.ts", import.meta.url);
  if (!workerAllowed(url)) return here(stream);
  let worker: Worker;
  try {
    worker = new Worker(url, { type: "module" });
  } catch {
    return here(stream);
  }
  const pending = digest ? pendingDigest() : undefined;
  /** The Worker's digest of all it sent, with its "done". */
  let sentDigest: string | undefined;
  // Input goes over in 1 MiB pieces of our own (read straight into them from a byte stream):
  // fewer messages, and fewer, larger writes into the decompressor, which costs per write.
  const filler = createBufferFiller(stream);
  const reader = {
    async read(): Promise<{ value: Uint8Array; done: false } | { done: true }> {
      const value = await filler.fill(new Uint8Array(INPUT_CHUNK_BYTES));
      return value.byteLength === 0 ? { done: true } : { value, done: false };
    },
    cancel: (reason?: unknown) => filler.cancel(reason),
  };
  /** Set when the Worker could not load: this thread decompresses (nothing was read yet). */
  let local: ReadableStreamDefaultReader<Uint8Array> | undefined;
  /** Then the digest comes from it, at its end. */
  let localDigest: Promise<string> | undefined;
  let loaded = false;
  const ready: Uint8Array[] = [];
  let finished: { error?: Error } | undefined;
  let wake: (() => void) | undefined;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    worker.terminate();
  };
  const settle = (outcome: { error?: Error }) => {
    finished ??= outcome;
    stop();
    wake?.();
  };
  /** Sends the Worker the next input piece (moved once it runs), or the end. */
  const sendInput = async () => {
    try {
      const read = await reader.read();
      // Until the Worker is known to run, what it was sent may have to be decompressed
      // here: it gets a copy (never `slice`, a view for a Buffer). Then pieces are moved.
      const keep = !read.done && !loaded;
      if (keep) early.push(read.value);
      if (stopped) return;
      if (read.done) return worker.postMessage({ type: "end" });
      const chunk = keep ? new Uint8Array(read.value) : read.value;
      worker.postMessage({ type: "input", chunk }, [
        chunk.buffer as ArrayBuffer,
      ]);
    } catch (error) {
      settle({ error: error as Error });
    }
  };
  let ungranted = 0;
  let previous = 0;
  /** Input sent before the Worker first answered. */
  const early: Uint8Array[] = [];
  /** The reads of input for the Worker, one after the other. */
  let sending = Promise.resolve();
  worker.onmessage = async ({ data }: MessageEvent<Reply>) => {
    loaded = true;
    early.length = 0;
    switch (data.type) {
      case "need": {
        sending = sending.then(sendInput);
        await sending;
        return;
      }
      case "output":
        ready.push(data.chunk);
        break;
      case "done":
        sentDigest = data.digest;
        finished ??= {};
        stop();
        break;
      case "error":
        settle({ error: errorOf(data.name, data.message) });
        return;
    }
    wake?.();
  };
  worker.onerror = (event) => {
    event.preventDefault();
    if (!loaded) {
      stop();
      const decompressed = here(
        new ReadableStream<Uint8Array>({
          async pull(controller) {
            // Reads under way for the Worker end first, so that their chunks come in order.
            await sending;
            if (early.length > 0) return controller.enqueue(early.shift()!);
            const read = await reader.read();
            if (read.done) controller.close();
            else controller.enqueue(read.value);
          },
          cancel: (reason) => reader.cancel(reason),
        }, { highWaterMark: 0 }),
      );
      local = decompressed.stream.getReader();
      localDigest = decompressed.digest;
      wake?.();
      return;
    }
    settle({
      error: new Error(`decompression Worker failed: ${event.message}`),
    });
  };
  worker.postMessage({ type: "start", compression, digest });
  worker.postMessage({
    type: "credit",
    bytes: OUTPUT_CREDIT_BYTES[compression],
  });
  // Input goes ahead in order: each read waits for the one before.
  for (let i = 0; i < INPUT_AHEAD; i++) sending = sending.then(sendInput);
  /** Hands out the next chunk, or closes at the end; throws the stream's error. */
  const next = async (
    controller: ReadableStreamDefaultController<Uint8Array>,
  ) => {
    // The chunk handed out last is read now: only then are its bytes granted again (a bomb's
    // 32 MiB chunk is not met by another while it is being written).
    ungranted += previous;
    previous = 0;
    if (ungranted >= CREDIT_STEP_BYTES && !stopped) {
      worker.postMessage({ type: "credit", bytes: ungranted });
      ungranted = 0;
    }
    while (ready.length === 0 && finished === undefined && !local) {
      await new Promise<void>((resolve) => wake = resolve);
      wake = undefined;
    }
    if (local) {
      const { value, done } = await local.read();
      if (!done) return controller.enqueue(value);
      if (pending) pending.resolve(await localDigest!);
      return controller.close();
    }
    const chunk = ready.shift();
    if (chunk !== undefined) {
      controller.enqueue(chunk);
      previous = chunk.byteLength;
      return;
    }
    if (finished?.error) throw finished.error;
    if (pending) {
      if (sentDigest === undefined) {
        throw new Error(
          "decompression Worker ended without the digest it was asked for",
        );
      }
      pending.resolve(sentDigest);
    }
    controller.close();
  };
  return {
    stream: new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          await next(controller);
        } catch (error) {
          pending?.reject(error);
          throw error;
        }
      },
      async cancel(reason) {
        pending?.reject(cancelledError(reason));
        stop();
        await (local ?? reader).cancel(reason);
      },
    }, { highWaterMark: 0 }),
    digest: pending?.promise,
  };
}
