/**
 * Reading zstd layers, through `node:zlib` (the web's `DecompressionStream` has no zstd);
 * they are written by {@link ./parallel_zstd.ts}, frame by frame on Workers, since Deno's
 * `node:zlib` refuses zstd's own worker threads.
 *
 * Deno's zstd decoder ends a write at the end of a frame and drops what follows in the same
 * write, and says nothing when the input ends inside a frame. So the input is read frame by
 * frame here (RFC 8878's frame and block headers: cheap, the blocks themselves are not looked
 * into): each write ends at a frame's end at the latest, skippable frames are dropped, and
 * input that ends inside a frame, or that is no frame at all, is refused.
 *
 * @module
 */
import { constants, createZstdDecompress } from "node:zlib";
import { throughZlib, ZLIB_CHUNK_BYTES } from "./zlib_stream.ts";

/**
 * The largest zstd window accepted, as a power of two: 32 MiB. Every level up to
 * `zstd --ultra -20` stays within it (`-3` uses 2 MiB, `-19` 8 MiB); a frame asking for more
 * (`--long`, `-21`, `-22`) is refused, since the decoder would hold that much whatever the
 * layer's size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_ZSTD_WINDOW_LOG } from "./zstd.ts";
 * assert.equal(2 ** MAX_ZSTD_WINDOW_LOG, 32 * 1024 * 1024);
 * ```
 */
export const MAX_ZSTD_WINDOW_LOG = 25;

/**
 * The bytes are not a well-formed zstd stream: no frame, a truncated one, a damaged block, or a
 * window larger than {@linkcode MAX_ZSTD_WINDOW_LOG} allows.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ZstdFormatError } from "./zstd.ts";
 * assert.equal(new ZstdFormatError("no frame").name, "ZstdFormatError");
 * ```
 */
export class ZstdFormatError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong.
   * @param options The decoder's own error, if it found it.
   */
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "ZstdFormatError";
  }
}

/** What a failing decoder threw, said in our words. */
function decoderError(error: unknown): unknown {
  if (error instanceof ZstdFormatError) return error;
  const message = (error as Error)?.message ?? String(error);
  if (/too much memory/i.test(message)) {
    return new ZstdFormatError(
      `a zstd frame needs a window larger than ${
        2 ** MAX_ZSTD_WINDOW_LOG / 1024 / 1024
      } MiB (made with zstd --long or --ultra -21 or more), which is refused to bound memory`,
      { cause: error },
    );
  }
  if (/zstd/i.test(message)) {
    return new ZstdFormatError(
      message.replace(/^Zstd decompress error: /, ""),
      {
        cause: error,
      },
    );
  }
  return error;
}

const FRAME_MAGIC = 0xfd2fb528;
const FRAME_MAGIC_BYTES = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd]);
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

type State =
  /** Between frames: the next 4 bytes are a magic number. */
  | { kind: "magic" }
  /** The frame header descriptor. */
  | { kind: "descriptor" }
  /** The rest of the frame header (window, dictionary ID, content size). */
  | { kind: "header"; left: number; checksum: boolean }
  | { kind: "block"; checksum: boolean }
  | { kind: "body"; left: number; last: boolean; checksum: boolean }
  | { kind: "checksum"; left: number }
  | { kind: "skippableSize" }
  | { kind: "skip"; left: number };

/**
 * Splits a zstd stream into pieces that each lie within one frame; skippable frames are left
 * out. Fields (magic numbers, headers) may straddle chunks.
 */
class FrameSplitter {
  #state: State = { kind: "magic" };
  /** Bytes of a fixed-size field gathered so far (at most 4). */
  #field = new Uint8Array(4);
  #fieldLength = 0;
  #frames = 0;
  #offset = 0;

  /** Gathers a field of `size` bytes; true once it is complete. */
  #gather(chunk: Uint8Array, at: number, size: number): [boolean, number] {
    const take = Math.min(size - this.#fieldLength, chunk.byteLength - at);
    this.#field.set(chunk.subarray(at, at + take), this.#fieldLength);
    this.#fieldLength += take;
    if (this.#fieldLength < size) return [false, at + take];
    this.#fieldLength = 0;
    return [true, at + take];
  }

  #uint(size: number): number {
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + this.#field[i];
    return value;
  }

  /** The pieces of `chunk` to decode, in order: none goes past the end of a frame. */
  split(chunk: Uint8Array): Uint8Array[] {
    const pieces: Uint8Array[] = [];
    /** Where the bytes to forward begin in `chunk`, or -1 outside a frame. */
    let start = this.#state.kind === "magic" ||
        this.#state.kind === "skippableSize" || this.#state.kind === "skip"
      ? -1
      : 0;
    let at = 0;
    const flush = () => {
      if (start !== -1 && at > start) pieces.push(chunk.subarray(start, at));
      start = -1;
    };
    while (at < chunk.byteLength) {
      const state = this.#state;
      switch (state.kind) {
        case "magic": {
          const [complete, next] = this.#gather(chunk, at, 4);
          at = next;
          if (!complete) break;
          const magic = this.#uint(4);
          if (magic === FRAME_MAGIC) {
            pieces.push(FRAME_MAGIC_BYTES);
            start = at;
            this.#state = { kind: "descriptor" };
          } else if (((magic & SKIPPABLE_MASK) >>> 0) === SKIPPABLE_MAGIC) {
            this.#state = { kind: "skippableSize" };
          } else {
            throw new ZstdFormatError(
              this.#frames === 0
                ? "the data is not zstd (no zstd frame at its start)"
                : `bytes that are no zstd frame follow frame ${this.#frames} at byte ${
                  this.#offset + at - 4
                }`,
            );
          }
          break;
        }
        case "descriptor": {
          const descriptor = chunk[at++];
          if (descriptor & 0x08) {
            throw new ZstdFormatError(
              "a zstd frame header sets its reserved bit",
            );
          }
          const single = (descriptor & 0x20) !== 0;
          const sizeFlag = descriptor >> 6;
          const contentSize = sizeFlag === 0 ? (single ? 1 : 0) : 1 << sizeFlag;
          const dictionary = [0, 1, 2, 4][descriptor & 0x03];
          const left = (single ? 0 : 1) + dictionary + contentSize;
          const checksum = (descriptor & 0x04) !== 0;
          this.#state = left > 0
            ? { kind: "header", left, checksum }
            : { kind: "block", checksum };
          break;
        }
        case "header": {
          const take = Math.min(state.left, chunk.byteLength - at);
          at += take;
          this.#state = state.left > take
            ? { ...state, left: state.left - take }
            : { kind: "block", checksum: state.checksum };
          break;
        }
        case "block": {
          const [complete, next] = this.#gather(chunk, at, 3);
          at = next;
          if (!complete) break;
          const header = this.#uint(3);
          const type = (header >> 1) & 0x03;
          if (type === 3) {
            throw new ZstdFormatError("a zstd block has the reserved type");
          }
          const last = (header & 1) === 1;
          const left = type === 1 ? 1 : header >>> 3;
          if (left > 0) {
            this.#state = {
              kind: "body",
              left,
              last,
              checksum: state.checksum,
            };
          } else this.#afterBlock(last, state.checksum, flush);
          break;
        }
        case "body": {
          const take = Math.min(state.left, chunk.byteLength - at);
          at += take;
          if (state.left > take) {
            this.#state = { ...state, left: state.left - take };
          } else this.#afterBlock(state.last, state.checksum, flush);
          break;
        }
        case "checksum": {
          const take = Math.min(state.left, chunk.byteLength - at);
          at += take;
          if (state.left > take) {
            this.#state = { kind: "checksum", left: state.left - take };
          } else this.#endFrame(flush);
          break;
        }
        case "skippableSize": {
          const [complete, next] = this.#gather(chunk, at, 4);
          at = next;
          if (!complete) break;
          const left = this.#uint(4);
          this.#state = left > 0 ? { kind: "skip", left } : { kind: "magic" };
          break;
        }
        case "skip": {
          const take = Math.min(state.left, chunk.byteLength - at);
          at += take;
          this.#state = state.left > take
            ? { kind: "skip", left: state.left - take }
            : { kind: "magic" };
          break;
        }
      }
    }
    flush();
    this.#offset += chunk.byteLength;
    return pieces;
  }

  /** What follows a block (whose body, possibly empty, is all read). */
  #afterBlock(last: boolean, checksum: boolean, flush: () => void): void {
    if (!last) this.#state = { kind: "block", checksum };
    else if (checksum) this.#state = { kind: "checksum", left: 4 };
    else this.#endFrame(flush);
  }

  #endFrame(flush: () => void): void {
    flush();
    this.#frames++;
    this.#state = { kind: "magic" };
  }

  /** Checks that the stream ended between frames, after at least one. */
  finish(): void {
    if (this.#state.kind === "magic" && this.#fieldLength === 0) {
      if (this.#frames === 0) {
        throw new ZstdFormatError("the data is empty: it holds no zstd frame");
      }
      return;
    }
    throw new ZstdFormatError(
      this.#state.kind === "skip" || this.#state.kind === "skippableSize"
        ? "the zstd data is truncated: it ends inside a skippable frame"
        : `the zstd data is truncated: it ends inside frame ${
          this.#frames + 1
        }`,
    );
  }
}

/**
 * Decompresses a zstd stream (one frame or several, skippable frames ignored) with bounded
 * memory whatever it inflates to: the decoder makes output only as it is read, and its window
 * is at most {@linkcode MAX_ZSTD_WINDOW_LOG}.
 *
 * @param stream The zstd bytes.
 * @returns The decompressed bytes; the stream errors with a {@linkcode ZstdFormatError} when
 * the input is not zstd, is damaged, ends inside a frame or needs a larger window.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { unzstdBounded, ZstdFormatError } from "./zstd.ts";
 * const garbage = new Response("not zstd").body!;
 * await assert.rejects(new Response(unzstdBounded(garbage)).text(), ZstdFormatError);
 * ```
 */
export function unzstdBounded(
  stream: ReadableStream<Uint8Array>,
): ReadableStream<Uint8Array> {
  const frames = new FrameSplitter();
  return throughZlib(
    stream,
    createZstdDecompress({
      chunkSize: ZLIB_CHUNK_BYTES,
      params: { [constants.ZSTD_d_windowLogMax]: MAX_ZSTD_WINDOW_LOG },
    }),
    {
      split: (chunk) => frames.split(chunk),
      finish: () => frames.finish(),
      errorOf: decoderError,
    },
  );
}
