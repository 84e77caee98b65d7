/**
 * Compression spread over Workers, as pigz and pzstd do it: the input is cut into fixed
 * blocks, each compressed on its own (see {@link ./block_codec.ts}), and the results written
 * in order. The bytes depend only on the input and the settings, never on how many Workers ran
 * or on how the input was chunked: with no Workers the same blocks are compressed on this
 * thread. {@linkcode parallelGzip} and {@linkcode parallelZstd} are the two formats over it.
 *
 * @module
 */
import type { BlockJob } from "./block_codec.ts";
import { compressBlock } from "./block_codec.ts";
import { workerAllowed } from "./worker_url.ts";

/** Options of a parallel compressor. */
export interface ParallelOptions {
  /**
   * How many Workers compress; 0 compresses on this thread (same bytes).
   * @default {defaultCompressionWorkers()}
   */
  readonly workers?: number;
  /**
   * Told when a Worker cannot start (no `Worker`, a module that will not load) or breaks, and
   * its blocks are compressed on this thread instead (the bytes are the same).
   */
  readonly onFallback?: (reason: string) => void;
  /**
   * Told about each input chunk once its bytes are copied into a block: a caller that owns
   * the chunks (and knows nothing else reads them) may free their memory now.
   */
  readonly onConsumed?: (chunk: Uint8Array) => void;
}

/**
 * The Workers used by default: one per core but one, left for tar and the two digests, and at
 * least two where there are two cores (tar and the digests take about a third of a core there:
 * measured on a 2-core machine, 2 Workers build a layer faster than 1).
 *
 * @returns The number of Workers a parallel compressor starts when not told.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultCompressionWorkers } from "./parallel_blocks.ts";
 * assert.ok(defaultCompressionWorkers() >= 1);
 * ```
 */
export function defaultCompressionWorkers(): number {
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  return cores <= 1 ? 1 : Math.max(2, cores - 1);
}

interface Reply {
  readonly seq: number;
  readonly output?: Uint8Array;
  /** The block's buffer, handed back. */
  readonly input?: ArrayBuffer;
  readonly error?: string;
}

interface Job {
  readonly seq: number;
  readonly job: BlockJob;
  resolve(output: Uint8Array): void;
  reject(error: unknown): void;
}

/**
 * Compresses blocks on Workers; a Worker that cannot start or breaks is replaced by this thread
 * for its blocks (the bytes are the same).
 */
class BlockPool {
  readonly #workers: (Worker | undefined)[] = [];
  /** Workers that answered once: their blocks are moved to them, not copied. */
  readonly #answered = new Set<number>();
  readonly #jobs = new Map<number, Job>();
  /** Told about a block's buffer once it is free again. */
  readonly #onFree: (buffer: ArrayBuffer) => void;
  /** Told when a Worker is replaced by this thread. */
  readonly #onFallback: (reason: string) => void;

  constructor(
    count: number,
    onFree: (buffer: ArrayBuffer) => void,
    onFallback: (reason: string) => void,
  ) {
    this.#onFree = onFree;
    this.#onFallback = onFallback;
    for (let i = 0; i < count; i++) this.#workers.push(this.#start(i));
  }

  #start(index: number): Worker | undefined {
    const url = new URL("./block_worker.ts", import.meta.url);
    if (!workerAllowed(url)) return undefined;
    let worker: Worker;
    try {
      worker = new Worker(url, { type: "module" });
    } catch (error) {
      this.#onFallback(`compression Worker ${index} did not start: ${error}`);
      return undefined;
    }
    worker.onmessage = ({ data }: MessageEvent<Reply>) => {
      this.#answered.add(index);
      if (data.input !== undefined) this.#onFree(data.input);
      const entry = this.#jobs.get(data.seq);
      if (entry === undefined) return;
      this.#jobs.delete(data.seq);
      if (data.output !== undefined) entry.resolve(exact(data.output));
      else entry.reject(new Error(`${entry.job.codec}: ${data.error}`));
    };
    worker.onerror = (event) => {
      // The Worker could not load (permissions, an import map) or broke: its blocks, and all
      // that would have gone to it, are compressed here instead.
      event.preventDefault();
      this.#onFallback(`compression Worker ${index} failed: ${event.message}`);
      this.#workers[index] = undefined;
      worker.terminate();
      for (const entry of [...this.#jobs.values()]) {
        if (entry.seq % this.#workers.length === index) this.#runHere(entry);
      }
    };
    return worker;
  }

  #runHere(entry: Job): void {
    this.#jobs.delete(entry.seq);
    try {
      entry.resolve(exact(compressBlock(entry.job)));
      this.#onFree(entry.job.data.buffer as ArrayBuffer);
    } catch (error) {
      entry.reject(error);
    }
  }

  /** Compresses a block; blocks are spread over the Workers by sequence number. */
  compress(seq: number, job: BlockJob): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const entry: Job = { seq, job, resolve, reject };
      const worker = this.#workers.length > 0
        ? this.#workers[seq % this.#workers.length]
        : undefined;
      if (worker === undefined) return this.#runHere(entry);
      this.#jobs.set(seq, entry);
      // Until the Worker has answered, it may yet fail to start and its blocks be compressed
      // here: they are copied to it rather than moved.
      const moved = this.#answered.has(seq % this.#workers.length);
      worker.postMessage(
        { ...job, seq },
        moved ? [job.data.buffer as ArrayBuffer] : [],
      );
    });
  }

  /** Stops every Worker; blocks still out are refused. */
  close(reason: unknown = new Error("compression stopped")): void {
    for (const worker of this.#workers) worker?.terminate();
    this.#workers.fill(undefined);
    for (const entry of this.#jobs.values()) entry.reject(reason);
    this.#jobs.clear();
  }
}

/**
 * The compressed bytes in a buffer of their size; zlib's larger buffer is released now rather
 * than left to the collector.
 */
function exact(output: Uint8Array): Uint8Array {
  const bytes = output.slice();
  try {
    (output.buffer as ArrayBuffer).transfer(0);
  } catch {
    // Not detachable: the collector frees it.
  }
  return bytes;
}

/** What a format adds around the blocks. */
export interface BlockFormat {
  /** Input bytes per block. */
  readonly blockBytes: number;
  /** The job for a block's bytes. */
  job(data: Uint8Array, last: boolean): BlockJob;
  /** Written before the first block. */
  readonly header?: Uint8Array;
  /** Sees every block's input, in order, before it is compressed (a checksum). */
  see?(data: Uint8Array): void;
  /** Written after the last block. */
  trailer?(): Uint8Array;
  /** Whether an empty last block is compressed (deflate must end its stream; zstd need not). */
  readonly emptyLast: boolean;
}

/**
 * A compressor whose blocks are compressed on Workers (see the module). At most a fixed number
 * of blocks (two per Worker, and one being filled) are held at once; writes wait while that
 * many are out. The Workers stop when the stream ends, errors or is cancelled.
 *
 * @param format The block size, the job per block, and what goes around the blocks.
 * @param options The number of Workers and the callbacks.
 * @returns A stream from the raw bytes to the compressed ones.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inflateRawSync } from "node:zlib";
 * import { parallelBlocks } from "./parallel_blocks.ts";
 * const raw = ReadableStream.from([new TextEncoder().encode("hello ".repeat(1000))])
 *   .pipeThrough(parallelBlocks({
 *     blockBytes: 1024,
 *     emptyLast: true,
 *     job: (data, last) => ({ codec: "deflate", data, last, level: 6 }),
 *   }, { workers: 0 }));
 * const bytes = new Uint8Array(await new Response(raw).arrayBuffer());
 * assert.equal(new TextDecoder().decode(inflateRawSync(bytes)), "hello ".repeat(1000));
 * ```
 */
export function parallelBlocks(
  format: BlockFormat,
  options: ParallelOptions = {},
): TransformStream<Uint8Array, Uint8Array> {
  const { blockBytes } = format;
  const workers = options.workers ?? defaultCompressionWorkers();
  const maxOut = Math.max(1, workers + 1);
  let pool: BlockPool | undefined;
  /** Block buffers free to be filled again (at most one per block out, and one). */
  const free: ArrayBuffer[] = [];
  const recycle = (buffer: ArrayBuffer) => {
    if (buffer.byteLength === blockBytes && free.length <= maxOut) {
      free.push(buffer);
    }
  };
  let block = new Uint8Array(blockBytes);
  let filled = 0;
  let seq = 0;
  const out: Promise<Uint8Array>[] = [];

  function submit(last: boolean): void {
    const data = block.subarray(0, filled);
    format.see?.(data);
    if (filled === 0 && last && !format.emptyLast && seq > 0) return;
    pool ??= new BlockPool(workers, recycle, options.onFallback ?? (() => {}));
    const compressing = pool.compress(seq++, format.job(data, last));
    // Refusals are seen when the block's turn comes; until then they are not unhandled.
    compressing.catch(() => {});
    out.push(compressing);
    const reused = free.pop();
    block = reused ? new Uint8Array(reused) : new Uint8Array(blockBytes);
    filled = 0;
  }

  async function drain(
    limit: number,
    controller: TransformStreamDefaultController<Uint8Array>,
  ): Promise<void> {
    while (out.length > limit) controller.enqueue(await out.shift()!);
  }

  function stop(reason?: unknown): void {
    pool?.close(reason);
    pool = undefined;
    out.length = 0;
  }

  return new TransformStream<Uint8Array, Uint8Array>({
    start(controller) {
      if (format.header) controller.enqueue(format.header.slice());
    },
    async transform(chunk, controller) {
      try {
        for (let offset = 0; offset < chunk.byteLength;) {
          if (filled === blockBytes) {
            submit(false);
            await drain(maxOut, controller);
          }
          const take = Math.min(blockBytes - filled, chunk.byteLength - offset);
          block.set(chunk.subarray(offset, offset + take), filled);
          filled += take;
          offset += take;
        }
        options.onConsumed?.(chunk);
      } catch (error) {
        stop(error);
        throw error;
      }
    },
    async flush(controller) {
      try {
        submit(true);
        await drain(0, controller);
        if (format.trailer) controller.enqueue(format.trailer());
      } finally {
        stop();
      }
    },
    cancel(reason) {
      stop(reason);
    },
  });
}
