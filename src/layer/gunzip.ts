/**
 * gzip for layers, read through `node:zlib` (faster than the web's `DecompressionStream`, and it
 * reads multi-member gzip: concatenated members as `cat a.gz b.gz`, `pigz --independent` or
 * `bgzip` write them). Memory stays bounded whatever the layer inflates to; trailing zeros
 * (padding) are allowed after the last member, as `gzip -t` allows them, and anything else
 * after it is refused.
 *
 * @module
 */
import { createGunzip } from "node:zlib";
import { throughZlib, ZLIB_CHUNK_BYTES } from "./zlib_stream.ts";

/**
 * The bytes are not a well-formed gzip stream: no gzip header, a truncated or damaged member,
 * a CRC that does not match, or bytes after the last member that are neither a member nor zeros.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GzipFormatError } from "./gunzip.ts";
 * assert.equal(new GzipFormatError("no header").name, "GzipFormatError");
 * ```
 */
export class GzipFormatError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong.
   * @param options The decoder's own error, if it found it.
   */
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "GzipFormatError";
  }
}

/** Gunzip one step may produce, about: input is cut into pieces so that no more comes out. */
const INFLATE_STEP_BYTES = 1024 * 1024;
/** The most deflate expands a byte to (a 258-byte match costs about two bits). */
const DEFLATE_MAX_RATIO = 1032;
/**
 * The largest piece written at once: 1 MiB, since node:zlib costs per write (64 KiB pieces
 * made gunzip 1.5x slower). A bomb behind incompressible bytes can still turn one piece into
 * much output: node:zlib pauses inside a write once its output is not read (measured: a 1 MiB
 * write of a 1 GiB bomb, unread, left 256 KiB of output), so memory stays bounded.
 */
const MAX_PIECE_BYTES = 1024 * 1024;
const MIN_PIECE_BYTES = Math.floor(INFLATE_STEP_BYTES / DEFLATE_MAX_RATIO);
/** The smallest gzip member (header and trailer): a header error before it is the first's. */
const MIN_MEMBER_BYTES = 18;

/** zlib's messages for a damaged header: only ever met where a member begins. */
const HEADER_ERRORS =
  /incorrect header check|unknown compression method|unknown header flags set|header crc mismatch/;

/**
 * Gunzips with bounded memory: node:zlib makes output only as it is read, and the input is
 * written in pieces sized by the ratio seen so far (small while output is large, at most
 * {@linkcode MAX_PIECE_BYTES}), so that one write never holds much more than a step of output.
 *
 * @param stream The gzip bytes: one member or several, then optionally zeros.
 * @returns The decompressed bytes; the stream errors with a {@linkcode GzipFormatError} when
 * the input is not gzip, is damaged or truncated, or has other bytes after its last member.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gzipSync } from "node:zlib";
 * import { gunzipBounded, GzipFormatError } from "./gunzip.ts";
 * const member = (text: string) => new Uint8Array(gzipSync(new TextEncoder().encode(text)));
 * const two = ReadableStream.from([member("one "), member("two")]);
 * assert.equal(await new Response(gunzipBounded(two)).text(), "one two");
 * const garbage = ReadableStream.from([new TextEncoder().encode("not gzip")]);
 * await assert.rejects(new Response(gunzipBounded(garbage)).text(), GzipFormatError);
 * ```
 */
export function gunzipBounded(
  stream: ReadableStream<Uint8Array>,
): ReadableStream<Uint8Array> {
  const gunzip = createGunzip({ chunkSize: ZLIB_CHUNK_BYTES });
  let ratio = DEFLATE_MAX_RATIO;
  /** Input bytes given to the decoder, and output bytes read from it. */
  let fed = 0;
  let made = 0;
  let fedAtRatio = 0;
  let madeAtRatio = 0;
  /** Pieces written whose bytes the decoder may not have taken yet (it stops at padding). */
  const unconsumed: { offset: number; bytes: Uint8Array }[] = [];
  /** Where the gzip data ended, once the decoder said so; then what follows is padding. */
  let end: number | undefined;
  /** Offset of the next trailing byte to check. */
  let trailingAt = 0;
  const checkTrailing = (bytes: Uint8Array, offset: number) => {
    const at = bytes.findIndex((byte) => byte !== 0);
    if (at !== -1) {
      throw new GzipFormatError(
        `bytes that are no gzip member follow the gzip data: byte ${
          offset + at
        } is not zero (the data ends at byte ${end})`,
      );
    }
  };
  /** Called once the decoder's output ended: the bytes it did not take must be zeros. */
  const ended = () => {
    if (end !== undefined) return;
    end = gunzip.bytesWritten;
    for (const { offset, bytes } of unconsumed) {
      const from = Math.max(0, end - offset);
      if (from < bytes.byteLength) {
        checkTrailing(bytes.subarray(from), offset + from);
      }
    }
    unconsumed.length = 0;
    trailingAt = fed;
  };
  const decoded = throughZlib(stream, gunzip, {
    split(chunk) {
      if (made > madeAtRatio) {
        ratio = Math.max(
          1,
          (made - madeAtRatio) / Math.max(1, fed - fedAtRatio),
        );
        [fedAtRatio, madeAtRatio] = [fed, made];
      }
      const size = Math.min(
        MAX_PIECE_BYTES,
        Math.max(MIN_PIECE_BYTES, Math.floor(INFLATE_STEP_BYTES / ratio)),
      );
      while (
        unconsumed.length > 0 &&
        unconsumed[0].offset + unconsumed[0].bytes.byteLength <=
          gunzip.bytesWritten
      ) unconsumed.shift();
      const pieces: Uint8Array[] = [];
      for (let at = 0; at < chunk.byteLength; at += size) {
        const piece = chunk.subarray(at, at + size);
        unconsumed.push({ offset: fed, bytes: piece });
        fed += piece.byteLength;
        pieces.push(piece);
      }
      return pieces;
    },
    trailing(chunk) {
      ended();
      checkTrailing(chunk, trailingAt);
      trailingAt += chunk.byteLength;
    },
    finish() {
      if (fed === 0) {
        throw new GzipFormatError("the data is empty: it holds no gzip member");
      }
    },
    errorOf(error) {
      if (error instanceof GzipFormatError) return error;
      const message = (error as Error)?.message ?? String(error);
      const code = (error as { code?: string })?.code ?? "";
      if (code === "ERR_STREAM_PUSH_AFTER_EOF") {
        // The decoder read on past padding into another member.
        return new GzipFormatError(
          `bytes that are no gzip member follow the gzip data: a member after zeros, before byte ${fed}`,
          { cause: error },
        );
      }
      if (!code.startsWith("Z_")) return error;
      if (HEADER_ERRORS.test(message)) {
        // Where the decoder had got to, and the end of what it had been given.
        const from = gunzip.bytesWritten;
        return new GzipFormatError(
          from < MIN_MEMBER_BYTES
            ? `the data is not gzip (${message} at its start)`
            : `bytes that are no gzip member follow the gzip data (${message}), between bytes ${from} and ${fed}`,
          { cause: error },
        );
      }
      if (/unexpected end of file/.test(message)) {
        return new GzipFormatError(
          "the gzip data is truncated: it ends inside a member",
          { cause: error },
        );
      }
      return new GzipFormatError(`the gzip data is damaged: ${message}`, {
        cause: error,
      });
    },
  });
  const reader = decoded.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) {
        ended();
        return controller.close();
      }
      made += value.byteLength;
      controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}
