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
import { type Compression, decompress } from "./compression.ts";
import { ZstdFormatError } from "./zstd.ts";
import { GzipFormatError } from "./gunzip.ts";
import { workerAllowed } from "./worker_url.ts";
import { createBufferFiller } from "../io/bytes.ts";

/** Decompressed bytes the Worker may send before they are read. */
const OUTPUT_CREDIT_BYTES = 1024 * 1024;
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
  | { readonly type: "done" }
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
  if (compression === "none") return stream;
  const url = new URL("./inflate_worker.ts", import.meta.url);
  if (!workerAllowed(url)) return decompress(stream, compression);
  let worker: Worker;
  try {
    worker = new Worker(url, { type: "module" });
  } catch {
    return decompress(stream, compression);
  }
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
  let here: ReadableStreamDefaultReader<Uint8Array> | undefined;
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
  /** Sends the Worker the next input chunk (a copy of just its bytes), or the end. */
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
      here = decompress(
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
        compression,
      ).getReader();
      wake?.();
      return;
    }
    settle({
      error: new Error(`decompression Worker failed: ${event.message}`),
    });
  };
  worker.postMessage({ type: "start", compression });
  worker.postMessage({ type: "credit", bytes: OUTPUT_CREDIT_BYTES });
  // Input goes ahead in order: each read waits for the one before.
  for (let i = 0; i < INPUT_AHEAD; i++) sending = sending.then(sendInput);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      // The chunk handed out last is read now: only then are its bytes granted again (a bomb's
      // 32 MiB chunk is not met by another while it is being written).
      ungranted += previous;
      previous = 0;
      if (ungranted >= CREDIT_STEP_BYTES && !stopped) {
        worker.postMessage({ type: "credit", bytes: ungranted });
        ungranted = 0;
      }
      while (ready.length === 0 && finished === undefined && !here) {
        await new Promise<void>((resolve) => wake = resolve);
        wake = undefined;
      }
      if (here) {
        const { value, done } = await here.read();
        return done ? controller.close() : controller.enqueue(value);
      }
      const chunk = ready.shift();
      if (chunk !== undefined) {
        controller.enqueue(chunk);
        previous = chunk.byteLength;
        return;
      }
      if (finished?.error) throw finished.error;
      controller.close();
    },
    async cancel(reason) {
      stop();
      await (here ?? reader).cancel(reason);
    },
  }, { highWaterMark: 0 });
}
