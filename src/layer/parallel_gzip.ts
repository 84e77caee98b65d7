/**
 * gzip compression spread over Workers, as pigz does it: 1 MiB blocks deflated on their own
 * (see {@link ./block_codec.ts} for why no dictionary), written in order as one gzip member:
 * one header, the CRC-32 and size of the whole input. One member, because Deno's
 * `DecompressionStream` (and other strict readers) refuse several.
 *
 * @module
 */
import { crc32 } from "node:zlib";
import { parallelBlocks, type ParallelOptions } from "./parallel_blocks.ts";

/** Input bytes per block (pigz uses 128 KiB; larger blocks lose less to the empty window). */
export const GZIP_BLOCK_BYTES = 1024 * 1024;

/** Options of {@linkcode parallelGzip}. */
export interface ParallelGzipOptions extends ParallelOptions {
  /**
   * zlib level, 0-9.
   * @default {6}
   */
  readonly level?: number;
}

function gzipHeader(level: number): Uint8Array {
  // No name, no mtime (reproducible), XFL as zlib sets it, OS "unknown".
  const xfl = level === 9 ? 2 : level === 1 ? 4 : 0;
  return new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]);
}

function gzipTrailer(crc: number, size: number): Uint8Array {
  const trailer = new Uint8Array(8);
  const view = new DataView(trailer.buffer);
  view.setUint32(0, crc >>> 0, true);
  view.setUint32(4, size % 2 ** 32, true);
  return trailer;
}

/**
 * A gzip compressor whose deflating runs on Workers, block by block (see the module). At most
 * a fixed number of blocks (two per Worker, and one being filled) are held at once; writes wait
 * while that many are out. The Workers stop when the stream ends, errors or is cancelled.
 *
 * @param options The level, the number of Workers and the callbacks.
 * @returns A stream from the raw bytes to one gzip member.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gunzipSync } from "node:zlib";
 * import { parallelGzip } from "./parallel_gzip.ts";
 * const text = "hello ".repeat(500_000);
 * const gzipped = ReadableStream.from([new TextEncoder().encode(text)])
 *   .pipeThrough(parallelGzip({ workers: 2 }));
 * const bytes = new Uint8Array(await new Response(gzipped).arrayBuffer());
 * assert.equal(new TextDecoder().decode(gunzipSync(bytes)), text);
 * ```
 */
export function parallelGzip(
  options: ParallelGzipOptions = {},
): TransformStream<Uint8Array, Uint8Array> {
  const level = options.level ?? 6;
  let crc = 0;
  let size = 0;
  return parallelBlocks({
    blockBytes: GZIP_BLOCK_BYTES,
    emptyLast: true,
    header: gzipHeader(level),
    see(data) {
      crc = crc32(data, crc);
      size += data.byteLength;
    },
    job: (data, last) => ({ codec: "deflate", data, last, level }),
    trailer: () => gzipTrailer(crc, size),
  }, options);
}
