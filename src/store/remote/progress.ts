/**
 * Progress of transfers: a counting stream for callbacks, and the one-line summary a finished
 * transfer logs.
 *
 * @module
 */
import { formatRate, formatSize } from "../../io/size.ts";

/** Bytes done out of a total, reported while a blob moves. */
export interface TransferProgress {
  /** The blob's digest. */
  readonly digest: string;
  /** Bytes moved so far. */
  readonly done: number;
  /** Bytes in all, when known. */
  readonly total: number | undefined;
}

/** Options shared by operations that move bytes. */
export interface ProgressOptions {
  /** Called as bytes move (at most once per chunk). */
  readonly onProgress?: (progress: TransferProgress) => void;
  /** Receives one line per finished upload or download: digest, size, seconds, MiB/s. */
  readonly log?: (line: string) => void;
}

/**
 * A pass-through stream that reports how many bytes went through it.
 *
 * @param digest The blob being moved, for the report.
 * @param total Its size, when known.
 * @param onProgress The callback; without one the stream only passes bytes on.
 * @returns The counting stream.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createProgressStream } from "./progress.ts";
 * const seen: number[] = [];
 * const stream = new Response("hello").body!.pipeThrough(
 *   createProgressStream("sha256:x", 5, (p) => seen.push(p.done)),
 * );
 * assert.equal(await new Response(stream).text(), "hello");
 * assert.deepEqual(seen, [5]);
 * ```
 */
export function createProgressStream(
  digest: string,
  total: number | undefined,
  onProgress: ((progress: TransferProgress) => void) | undefined,
): TransformStream<Uint8Array, Uint8Array> {
  let done = 0;
  return new TransformStream({
    transform(chunk, controller) {
      done += chunk.byteLength;
      onProgress?.({ digest, done, total });
      controller.enqueue(chunk);
    },
  });
}

/**
 * The summary line of a finished transfer, as spack's `_log_upload_progress` prints it, in the
 * CLI's one unit system (`formatSize`, `formatRate`).
 *
 * @param verb What happened, e.g. `Uploaded`.
 * @param digest The blob.
 * @param size Bytes moved.
 * @param seconds Time taken.
 * @returns E.g. `Uploaded sha256:ab… (5.0 MiB in 0.50s, 10.0 MiB/s)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatTransfer } from "./progress.ts";
 * assert.equal(formatTransfer("Uploaded", "sha256:abc", 2 * 1024 * 1024, 1), "Uploaded sha256:abc (2.0 MiB in 1.00s, 2.0 MiB/s)");
 * ```
 */
export function formatTransfer(
  verb: string,
  digest: string,
  size: number,
  seconds: number,
): string {
  const elapsed = Math.max(seconds, 0.001);
  return `${verb} ${digest} (${formatSize(size)} in ${elapsed.toFixed(2)}s, ${
    formatRate(size / elapsed)
  })`;
}
