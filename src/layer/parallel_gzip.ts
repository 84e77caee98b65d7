/**
 * gzip compression spread over Workers, as pigz does it: the input is cut into fixed blocks,
 * each deflated on its own and ended by a sync flush (see {@link ./deflate_block.ts} for why no
 * dictionary), and the blocks are written in order as one gzip member (one header, the CRC-32 and size of the whole
 * input). The bytes depend only on the input and the level, never on how many Workers ran or on
 * how the input was chunked: with no Workers the same blocks are deflated on this thread.
 *
 * @module
 */
import { crc32 } from "node:zlib";
import { deflateBlock, type DeflateJob } from "./deflate_block.ts";
import { workerAllowed } from "./worker_url.ts";

/** Input bytes per block (pigz uses 128 KiB; larger blocks lose less to the empty window). */
export const GZIP_BLOCK_BYTES = 1024 * 1024;

/** Options of {@linkcode parallelGzip}. */
export interface ParallelGzipOptions {
  /**
   * zlib level, 0-9.
   * @default {6}
   */
  readonly level?: number;
  /**
   * How many Workers deflate; 0 deflates on this thread (same bytes).
   * @default {defaultGzipWorkers()}
   */
  readonly workers?: number;
  /**
   * Told when a Worker cannot start (no `Worker`, a module that will not load) or breaks, and
   * its blocks are deflated on this thread instead (the bytes are the same).
   */
  readonly onFallback?: (reason: string) => void;
}

/**
 * The Workers used by default: one per core but one, left for tar and the two digests, and at
 * least two where there are two cores (tar and the digests take about a third of a core there:
 * measured on a 2-core machine, 2 Workers build a layer faster than 1).
 *
 * @returns The number of Workers {@linkcode parallelGzip} starts when not told.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultGzipWorkers } from "./parallel_gzip.ts";
 * assert.ok(defaultGzipWorkers() >= 1);
 * ```
 */
export function defaultGzipWorkers(): number {
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

interface Job extends DeflateJob {
  readonly seq: number;
  resolve(output: Uint8Array): void;
  reject(error: unknown): void;
}

/**
 * Deflates jobs on Workers; a Worker that cannot start or breaks is replaced by this thread for
 * its jobs (the bytes are the same).
 */
class DeflatePool {
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
    const url = new URL("./deflate_worker.ts", import.meta.url);
    if (!workerAllowed(url)) return undefined;
    let worker: Worker;
    try {
      worker = new Worker(url, { type: "module" });
    } catch (error) {
      this.#onFallback(`gzip Worker ${index} did not start: ${error}`);
      return undefined;
    }
    worker.onmessage = ({ data }: MessageEvent<Reply>) => {
      this.#answered.add(index);
      if (data.input !== undefined) this.#onFree(data.input);
      const job = this.#jobs.get(data.seq);
      if (job === undefined) return;
      this.#jobs.delete(data.seq);
      if (data.output !== undefined) job.resolve(exact(data.output));
      else job.reject(new Error(`gzip: ${data.error}`));
    };
    worker.onerror = (event) => {
      // The Worker could not load (permissions, an import map) or broke: its jobs, and all
      // that would have gone to it, are deflated here instead.
      event.preventDefault();
      this.#onFallback(`gzip Worker ${index} failed: ${event.message}`);
      this.#workers[index] = undefined;
      worker.terminate();
      for (const job of [...this.#jobs.values()]) {
        if (job.seq % this.#workers.length === index) this.#runHere(job);
      }
    };
    return worker;
  }

  #runHere(job: Job): void {
    this.#jobs.delete(job.seq);
    try {
      job.resolve(exact(deflateBlock(job)));
      this.#onFree(job.data.buffer as ArrayBuffer);
    } catch (error) {
      job.reject(error);
    }
  }

  /** Deflates a block; blocks are spread over the Workers by sequence number. */
  deflate(seq: number, job: DeflateJob): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const entry: Job = { ...job, seq, resolve, reject };
      const worker = this.#workers.length > 0
        ? this.#workers[seq % this.#workers.length]
        : undefined;
      if (worker === undefined) return this.#runHere(entry);
      this.#jobs.set(seq, entry);
      // Until the Worker has answered, it may yet fail to start and its blocks be deflated
      // here: they are copied to it rather than moved.
      const moved = this.#answered.has(seq % this.#workers.length);
      worker.postMessage(
        { seq, data: job.data, last: job.last, level: job.level },
        moved ? [job.data.buffer as ArrayBuffer] : [],
      );
    });
  }

  /** Stops every Worker; jobs still out are refused. */
  close(reason: unknown = new Error("gzip: stopped")): void {
    for (const worker of this.#workers) worker?.terminate();
    this.#workers.fill(undefined);
    for (const job of this.#jobs.values()) job.reject(reason);
    this.#jobs.clear();
  }
}

/**
 * The deflated bytes in a buffer of their size; zlib's larger buffer is released now rather
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
 * @param options The level and the number of Workers.
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
  const workers = options.workers ?? defaultGzipWorkers();
  const maxOut = Math.max(1, 2 * workers);
  let pool: DeflatePool | undefined;
  /** Block buffers free to be filled again (at most one per block out, and one). */
  const free: ArrayBuffer[] = [];
  const recycle = (buffer: ArrayBuffer) => {
    if (buffer.byteLength === GZIP_BLOCK_BYTES && free.length <= maxOut) {
      free.push(buffer);
    }
  };
  let block = new Uint8Array(GZIP_BLOCK_BYTES);
  let filled = 0;
  let crc = 0;
  let size = 0;
  let seq = 0;
  const out: Promise<Uint8Array>[] = [];

  function submit(last: boolean): void {
    const data = block.subarray(0, filled);
    crc = crc32(data, crc);
    size += filled;
    pool ??= new DeflatePool(
      workers,
      recycle,
      options.onFallback ?? (() => {}),
    );
    const deflating = pool.deflate(seq++, { data, last, level });
    // Refusals are seen when the block's turn comes; until then they are not unhandled.
    deflating.catch(() => {});
    out.push(deflating);
    const reused = free.pop();
    block = reused ? new Uint8Array(reused) : new Uint8Array(GZIP_BLOCK_BYTES);
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
      controller.enqueue(gzipHeader(level));
    },
    async transform(chunk, controller) {
      try {
        for (let offset = 0; offset < chunk.byteLength;) {
          if (filled === GZIP_BLOCK_BYTES) {
            submit(false);
            await drain(maxOut, controller);
          }
          const take = Math.min(
            GZIP_BLOCK_BYTES - filled,
            chunk.byteLength - offset,
          );
          block.set(chunk.subarray(offset, offset + take), filled);
          filled += take;
          offset += take;
        }
      } catch (error) {
        stop(error);
        throw error;
      }
    },
    async flush(controller) {
      try {
        submit(true);
        await drain(0, controller);
        controller.enqueue(gzipTrailer(crc, size));
      } finally {
        stop();
      }
    },
    cancel(reason) {
      stop(reason);
    },
  });
}
