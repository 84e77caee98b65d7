/**
 * Decompression on a Worker, so that inflating a layer runs beside the tar reader, the digest
 * and the file writes instead of between them. Bounded both ways: the Worker asks for input
 * one chunk at a time, and sends at most {@linkcode OUTPUT_CREDITS} chunks ahead of what was
 * read (each chunk itself bounded by the decompressor, as on the main thread).
 *
 * @module
 */
import { type Compression, decompress } from "./compression.ts";
import { ZstdFormatError } from "./zstd.ts";

/** Decompressed chunks the Worker may send before they are read. */
const OUTPUT_CREDITS = 1;

/** What the Worker sends. */
type Reply =
  | { readonly type: "need" }
  | { readonly type: "output"; readonly chunk: Uint8Array }
  | { readonly type: "done" }
  | { readonly type: "error"; readonly name: string; readonly message: string };

/** The Worker's error as the main thread would have thrown it. */
function errorOf(name: string, message: string): Error {
  if (name === "ZstdFormatError") return new ZstdFormatError(message);
  const error = name === "TypeError"
    ? new TypeError(message)
    : name === "RangeError"
    ? new RangeError(message)
    : new Error(message);
  error.name = name;
  return error;
}

/**
 * Decompresses gzip on a Worker, or on this thread when no Worker can start (zstd and none
 * always here). The output chunks are the stream's own (they may be released once read).
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
  // zstd stays here: Deno 2.9's node:zlib zstd decoder fails in a Worker on small layers
  // ("invalid output range", where the same bytes decode on the main thread).
  if (compression !== "gzip") return decompress(stream, compression);
  let worker: Worker;
  try {
    worker = new Worker(new URL("./inflate_worker.ts", import.meta.url), {
      type: "module",
    });
  } catch {
    return decompress(stream, compression);
  }
  const reader = stream.getReader();
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
  worker.onmessage = async ({ data }: MessageEvent<Reply>) => {
    loaded = true;
    switch (data.type) {
      case "need": {
        try {
          const { value, done } = await reader.read();
          if (stopped) return;
          if (done) worker.postMessage({ type: "end" });
          else {
            // The caller's chunk stays the caller's: a copy of just its bytes is moved.
            const chunk = value.slice();
            worker.postMessage({ type: "input", chunk }, [
              chunk.buffer as ArrayBuffer,
            ]);
          }
        } catch (error) {
          settle({ error: error as Error });
        }
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
            const { value, done } = await reader.read();
            if (done) controller.close();
            else controller.enqueue(value);
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
  worker.postMessage({ type: "credit", chunks: OUTPUT_CREDITS });
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
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
        if (!stopped) worker.postMessage({ type: "credit", chunks: 1 });
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
