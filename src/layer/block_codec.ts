/**
 * One block of a parallel compressor, compressed the same way wherever it runs (a Worker or the
 * main thread), so that the bytes never depend on how many Workers ran.
 *
 * - deflate (for one gzip member): raw deflate ended by a sync flush (or, for the last block,
 *   by the final block) so that blocks concatenate into one deflate stream. Unlike pigz, a
 *   block is not primed with the 32 KiB before it: Deno 2.9's node:zlib ignores the
 *   `dictionary` option (the output is the same with and without it), and the bytes must not
 *   change the day it stops ignoring it. With 1 MiB blocks starting from an empty window costs
 *   0.14 % in size against one deflate stream (1.1 % with pigz's 128 KiB blocks), measured on
 *   a tar of /usr/lib.
 * - zstd: one independent frame per block, with zstd's checksum (as `pzstd` writes them): a
 *   zstd stream is one or more frames (RFC 8878, section 3), and every reader (zstd, Go's
 *   klauspost/compress, containerd, skopeo) reads them one after the other.
 *
 * @module
 */
import {
  constants,
  deflateRawSync,
  type ZlibOptions,
  zstdCompressSync,
} from "node:zlib";

/**
 * zlib's output buffer is the block's size and this much more: more than deflate or zstd can
 * ever add (deflate: 5 bytes per stored 16 KiB and the flush marker; zstd: 3 bytes per 128 KiB
 * block and the frame header), so that a block is compressed in one call into one buffer. This
 * is part of the format: Deno's node:zlib gives other deflate bytes for the same block when its
 * output is cut into smaller chunks (16 KiB by default).
 */
const CHUNK_SLACK_BYTES = 64 * 1024;

/** A block to deflate into a piece of one gzip member. */
export interface DeflateJob {
  /** How the block is compressed. */
  readonly codec: "deflate";
  /** The block's bytes. */
  readonly data: Uint8Array;
  /** Whether this block ends the stream. */
  readonly last: boolean;
  /** zlib level, 0-9. */
  readonly level: number;
}

/** A block to compress into one zstd frame. */
export interface ZstdJob {
  /** How the block is compressed. */
  readonly codec: "zstd";
  /** The block's bytes. */
  readonly data: Uint8Array;
  /** Whether this block ends the stream (frames are independent: it changes nothing). */
  readonly last: boolean;
  /** zstd level, 1-19. */
  readonly level: number;
}

/** A block and how to compress it. */
export type BlockJob = DeflateJob | ZstdJob;

/**
 * Compresses one block; the output depends only on the job, never on the thread.
 *
 * @param job The block, how to compress it, whether it is the last one, the level.
 * @returns The block's compressed bytes: a view at the start of a buffer of its own, larger
 * than the bytes (move the buffer, or copy the view and release it).
 */
export function compressBlock(job: BlockJob): Uint8Array {
  const chunkSize = job.data.byteLength + CHUNK_SLACK_BYTES;
  const output = job.codec === "deflate"
    ? deflateRawSync(job.data, {
      level: job.level,
      chunkSize,
      finishFlush: job.last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
    })
    : zstdCompressSync(job.data, {
      chunkSize,
      params: {
        [constants.ZSTD_c_compressionLevel]: job.level,
        [constants.ZSTD_c_checksumFlag]: 1,
      },
    } as ZlibOptions);
  return new Uint8Array(output.buffer, output.byteOffset, output.byteLength);
}
