/**
 * A web stream through a `node:zlib` transform (gzip and zstd, one thread), with back-pressure
 * both ways so that memory holds a few chunks whatever the data inflates to.
 *
 * @module
 */
import type { Transform } from "node:stream";

/** Output chunks of node:zlib: large enough that per-chunk costs vanish, small enough to bound. */
export const ZLIB_CHUNK_BYTES = 256 * 1024;

/** How {@linkcode throughZlib} feeds the transform and says what failed. */
export interface ThroughZlibOptions {
  /** Cuts each input chunk into the writes to make (default: the chunk as it is). */
  readonly split?: (chunk: Uint8Array) => Uint8Array[];
  /** Called once all input was written; throws to refuse how the input ended. */
  readonly finish?: () => void;
  /**
   * Given the input that comes after the transform's output ended (a gzip stream followed by
   * padding): throws to refuse it. Default: ignored.
   */
  readonly trailing?: (chunk: Uint8Array) => void;
  /** Turns the transform's (or `split`'s, `finish`'s, `trailing`'s) error into the stream's. */
  readonly errorOf?: (error: unknown) => unknown;
}

/**
 * Runs a stream through a node:zlib transform with back-pressure on both sides: input is
 * written only as the transform drains it, and the transform makes output only as it is read
 * (node:zlib pauses when its readable side is full, within a write too), so memory holds a few
 * chunks whatever the ratio. The output ends only once all the input was read: what comes
 * after the transform's own end goes to `trailing`.
 *
 * @param source The bytes to transform.
 * @param transform A fresh node:zlib transform (it is destroyed when the stream is cancelled).
 * @param options How to cut the input, check its end and name errors.
 * @returns The transformed bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createGunzip, gzipSync } from "node:zlib";
 * import { throughZlib } from "./zlib_stream.ts";
 * const packed = new Uint8Array(gzipSync(new TextEncoder().encode("layer")));
 * const out = throughZlib(ReadableStream.from([packed]), createGunzip());
 * assert.equal(await new Response(out).text(), "layer");
 * ```
 */
export function throughZlib(
  source: ReadableStream<Uint8Array>,
  transform: Transform,
  options: ThroughZlibOptions = {},
): ReadableStream<Uint8Array> {
  const split = options.split ?? ((chunk) => [chunk]);
  const errorOf = options.errorOf ?? ((error) => error);
  const reader = source.getReader();
  const output = transform[Symbol.asyncIterator]() as AsyncIterator<
    Uint8Array
  >;
  let finished = false;
  /** Set once the transform's output ended: the rest of the input is only checked. */
  let outputEnded = false;
  const ended = () => outputEnded || transform.readableEnded;
  /** Resolves once the transform wants more input, or is gone. */
  const drained = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        transform.off("drain", done);
        transform.off("close", done);
        resolve();
      };
      transform.on("drain", done);
      transform.on("close", done);
    });
  async function feed(): Promise<void> {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (ended()) {
          options.trailing?.(value);
          continue;
        }
        for (const piece of split(value)) {
          if (ended()) options.trailing?.(piece);
          else if (transform.destroyed) return;
          else if (!transform.write(piece)) await drained();
        }
      }
      options.finish?.();
      if (!ended()) transform.end();
    } catch (error) {
      if (ended()) throw error;
      transform.destroy(error as Error);
    }
  }
  /** Feeding runs beside reading; until the output ends its failures come through the transform. */
  let feeding: Promise<void> | undefined;
  return new ReadableStream<Uint8Array>({
    start() {
      feeding = feed();
      // Seen by pull once the output ended, or through the transform before.
      feeding.catch(() => {});
    },
    async pull(controller) {
      try {
        const { value, done } = await output.next();
        if (!done) return controller.enqueue(value);
        outputEnded = true;
        // What is still to come of the input is read and checked before the end is told.
        await feeding;
        finished = true;
        controller.close();
      } catch (error) {
        finished = true;
        await reader.cancel(error).catch(() => {});
        controller.error(errorOf(error));
      }
    },
    async cancel(reason) {
      if (finished) return;
      finished = true;
      transform.destroy();
      await reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}
