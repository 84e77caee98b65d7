/**
 * What the CLI shows while a layer is packed and blobs move. On a terminal: a packing line
 * (files and bytes read), a line per blob (short digest, state, bytes, rate, ETA) and a total
 * line, redrawn in place at most every 100 ms — by a timer too, so a stalled transfer's rate
 * and ETA still change —, finished lines kept; messages clear the block first and it is drawn
 * again under them. Otherwise: one line per blob when it finishes (a blob a command goes on
 * with after `exists`, such as a cached layer a pull extracts, when it is `done`), nothing
 * redrawn. Quiet: nothing. Blobs under 1 MiB get no line (they count in the total). Rates are
 * over a moving window of the current attempt, and shown only after 0.5 s of it.
 *
 * There is no `verifying` state: every store checks a blob's digest while its bytes stream
 * (`verifyStream`, the layout's ingest, the registry's upload), so a blob is verified when its
 * last byte has moved and a mismatch fails that attempt there; no pass over the bytes follows.
 *
 * @module
 */
import type { Descriptor } from "../oci/manifest.ts";
import type { BlobProgress, BlobState } from "../image/copy.ts";
import type { PackProgress } from "../layer/create_layer.ts";
import { formatRate, formatSize } from "../io/size.ts";

/** Blobs smaller than this get no line of their own. */
export const MIN_LINE_SIZE = 1024 * 1024;
/** Terminal redraws at most this often (ms). */
const TTY_INTERVAL = 100;
/** The rate is over the last this many ms. */
const WINDOW = 3000;
/** No rate before this many ms of an attempt's data. */
const MIN_RATE_SPAN = 500;

/** What the display knows of one blob. */
export interface BlobLine {
  /** The blob's digest. */
  readonly digest: string;
  /** Where it stands. */
  state: BlobState;
  /** Bytes moved in this attempt. */
  done: number;
  /** Its size. */
  readonly total: number;
  /** The attempt its bytes belong to. */
  attempt: number;
  /** `[ms, done]` samples of this attempt, the oldest within the window first. */
  samples: [number, number][];
  /** When its first bytes moved, for the plain line. */
  started?: number;
}

/** Whether a state is the end of a blob's story. */
export function isFinished(state: BlobState): boolean {
  return state === "done" || state === "exists" || state === "mounted";
}

/**
 * Bytes per second over the samples, or undefined until they span {@linkcode MIN_RATE_SPAN}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rateOf } from "./progress.ts";
 * assert.equal(rateOf([[0, 0], [400, 400]]), undefined);
 * assert.equal(rateOf([[0, 0], [1000, 2048]]), 2048);
 * ```
 */
export function rateOf(
  samples: readonly (readonly [number, number])[],
): number | undefined {
  if (samples.length < 2) return undefined;
  const [t0, b0] = samples[0];
  const [t1, b1] = samples[samples.length - 1];
  if (t1 - t0 < MIN_RATE_SPAN) return undefined;
  return (b1 - b0) / ((t1 - t0) / 1000);
}

/** Seconds as `7s` or `2m05s`. */
function formatEta(seconds: number): string {
  const s = Math.ceil(seconds);
  return s < 60
    ? `${s}s`
    : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/** `done / total  rate  ETA`, the rate and ETA only once known. */
function amounts(
  done: number,
  total: number,
  rate: number | undefined,
  moving: boolean,
): string {
  let text = `${formatSize(done)} / ${formatSize(total)}`;
  if (moving && rate !== undefined) {
    text += `  ${formatRate(rate)}`;
    if (rate > 0) text += `  ETA ${formatEta((total - done) / rate)}`;
  }
  return text;
}

/**
 * One blob's line: short digest, state, bytes, and (while it moves) rate and ETA.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderBlobLine } from "./progress.ts";
 * const line = { digest: "sha256:0123456789abcdef", state: "downloading" as const, done: 1 << 20, total: 4 << 20, attempt: 1, samples: [[0, 0], [1000, 1 << 20]] as [number, number][] };
 * assert.equal(renderBlobLine(line), "0123456789ab downloading 1.0 MiB / 4.0 MiB  1.0 MiB/s  ETA 3s");
 * ```
 */
export function renderBlobLine(line: BlobLine): string {
  const short = line.digest.slice(
    line.digest.indexOf(":") + 1,
    12 +
      line.digest.indexOf(":") + 1,
  );
  const moving = line.state === "downloading" || line.state === "uploading";
  return `${short} ${line.state.padEnd(11)} ${
    amounts(line.done, line.total, rateOf(line.samples), moving)
  }`;
}

/**
 * The total line: every blob's bytes, the overall rate and ETA, `done` once all are.
 *
 * @param lines Every blob the display was told of.
 * @param samples `[ms, bytes]` of all blobs together, within the window.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderTotalLine } from "./progress.ts";
 * const line = { digest: "sha256:0123456789abcdef", state: "done" as const, done: 2 << 20, total: 2 << 20, attempt: 1, samples: [] };
 * assert.equal(renderTotalLine([line], []), "total        done        2.0 MiB / 2.0 MiB");
 * ```
 */
export function renderTotalLine(
  lines: readonly BlobLine[],
  samples: readonly (readonly [number, number])[],
): string {
  let done = 0;
  let total = 0;
  let finished = 0;
  for (const line of lines) {
    done += isFinished(line.state) || line.state === "extracting" ||
        line.state === "waiting" && line.done > 0
      ? line.total
      : line.done;
    total += line.total;
    if (isFinished(line.state)) finished++;
  }
  const all = finished === lines.length;
  const state = all ? "done" : `${finished}/${lines.length}`;
  return `total        ${state.padEnd(11)} ${
    amounts(done, total, rateOf(samples), !all)
  }`;
}

/**
 * The packing line: files and bytes read so far out of all, the rate and ETA once known.
 *
 * @param progress How far the tar walk has read.
 * @param samples `[ms, bytes]` of the reading, within the window.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderPackLine } from "./progress.ts";
 * const progress = { files: 3, totalFiles: 10, bytes: 1 << 20, totalBytes: 4 << 20 };
 * assert.equal(renderPackLine(progress, [[0, 0], [1000, 1 << 20]]), "layer        packing     3/10 files  1.0 MiB / 4.0 MiB  1.0 MiB/s  ETA 3s");
 * ```
 */
export function renderPackLine(
  progress: PackProgress,
  samples: readonly (readonly [number, number])[],
): string {
  return `layer        ${
    "packing".padEnd(11)
  } ${progress.files}/${progress.totalFiles} files  ${
    amounts(progress.bytes, progress.totalBytes, rateOf(samples), true)
  }`;
}

/** Calls `tick` every `ms` until the returned function is called. */
export type Every = (tick: () => void, ms: number) => () => void;

const everyInterval: Every = (tick, ms) => {
  const id = setInterval(tick, ms);
  return () => clearInterval(id);
};

/** Where progress goes and how. */
export interface ProgressDisplay {
  /** Told of a blob's state and bytes (a copy's `onBlob`). */
  blob(descriptor: Descriptor, state: BlobState, progress: BlobProgress): void;
  /**
   * Told how far packing a layer has read (`createLayer`'s `onProgress`); `undefined` once the
   * layer is packed, which takes its line away.
   */
  pack(progress: PackProgress | undefined): void;
  /**
   * Writes a line of its own (a warning such as a retry) whatever the mode: on a terminal, the
   * progress block is cleared first and drawn again under it.
   */
  message(line: string): void;
  /**
   * Ends the display: a terminal's block is drawn a last time and left in place, its redraw
   * timer stopped; plain lines held for blobs that only existed are written. Messages after it
   * are written as they are. Called again, it does nothing.
   */
  done(): void;
}

/**
 * Makes a progress display.
 *
 * @param mode `tty` to redraw a block of lines, `plain` for a line per finished blob, `quiet`
 * for nothing but messages.
 * @param write Where text goes.
 * @param now The clock in milliseconds.
 * @param every Starts the terminal's redraw timer (while a block is shown) and returns its stop.
 * @returns The display.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createProgressDisplay } from "./progress.ts";
 * const out: string[] = [];
 * let clock = 0;
 * const display = createProgressDisplay("plain", (text) => out.push(text), () => clock);
 * const blob = { mediaType: "application/octet-stream", digest: "sha256:0123456789abcdef", size: 2 << 20 };
 * display.blob(blob, "downloading", { done: 0, total: 2 << 20, attempt: 1 });
 * clock = 2000;
 * display.blob(blob, "downloading", { done: 2 << 20, total: 2 << 20, attempt: 1 });
 * display.blob(blob, "done", { done: 2 << 20, total: 2 << 20, attempt: 1 });
 * assert.deepEqual(out, ["0123456789ab done 2.0 MiB in 2.0s (1.0 MiB/s)\n"]);
 * ```
 */
export function createProgressDisplay(
  mode: "tty" | "plain" | "quiet",
  write: (text: string) => void,
  now: () => number = Date.now,
  every: Every = everyInterval,
): ProgressDisplay {
  const blobs = new Map<string, BlobLine>();
  const totalSamples: [number, number][] = [];
  let moved = 0;
  let drawnLines = 0;
  let lastDraw = -Infinity;
  let packing: PackProgress | undefined;
  const packSamples: [number, number][] = [];
  /** Plain lines of blobs that only existed (or were mounted), written at the end. */
  const held = new Map<string, string>();
  /** Blobs that were there already (a pull's cached layers), for their plain line. */
  const existed = new Set<string>();
  let stopTimer: (() => void) | undefined;
  let finished = false;
  const trim = (samples: [number, number][], t: number) => {
    while (samples.length > 2 && t - samples[1][0] >= WINDOW) samples.shift();
  };
  const shown = () =>
    [...blobs.values()].filter((b) => b.total >= MIN_LINE_SIZE);
  const clear = () => {
    if (drawnLines > 0) write(`\r\x1b[${drawnLines}A\x1b[J`);
    drawnLines = 0;
  };
  const draw = () => {
    const lines = shown();
    const all = [...blobs.values()];
    const total = all.reduce((sum, b) => sum + b.total, 0);
    const text = packing ? [renderPackLine(packing, packSamples)] : [];
    text.push(...lines.map(renderBlobLine));
    if (total >= MIN_LINE_SIZE) text.push(renderTotalLine(all, totalSamples));
    clear();
    if (text.length > 0) write(text.map((l) => `\x1b[2K${l}\n`).join(""));
    drawnLines = text.length;
    lastDraw = now();
  };
  /** A timer tick: what has not moved since is sampled as it stands, then all is drawn. */
  const tick = () => {
    const t = now();
    if (t - lastDraw < TTY_INTERVAL) return;
    for (const line of blobs.values()) {
      if (line.state === "downloading" || line.state === "uploading") {
        line.samples.push([t, line.done]);
        trim(line.samples, t);
      }
    }
    if (totalSamples.length > 0) {
      totalSamples.push([t, moved]);
      trim(totalSamples, t);
    }
    if (packing && packSamples.length > 0) {
      packSamples.push([t, packing.bytes]);
      trim(packSamples, t);
    }
    draw();
  };
  const startTimer = () => {
    if (mode === "tty" && !finished && stopTimer === undefined) {
      stopTimer = every(tick, TTY_INTERVAL);
    }
  };
  const plainLine = (line: BlobLine, t: number, cached: boolean) => {
    const seconds = (t - (line.started ?? t)) / 1000;
    const rate = seconds >= MIN_RATE_SPAN / 1000
      ? ` (${formatRate(line.total / seconds)})`
      : "";
    return `${renderBlobLine(line).split(/ +/, 2).join(" ")} ${
      formatSize(line.total)
    }${
      line.state === "done" && line.started !== undefined
        ? ` in ${seconds.toFixed(1)}s${rate}`
        : cached
        ? " (cached)"
        : ""
    }\n`;
  };
  return {
    blob(descriptor, state, progress) {
      // After the end (an error or Ctrl-C stopped the display), nothing is drawn again.
      if (mode === "quiet" || finished) return;
      const t = now();
      let line = blobs.get(descriptor.digest);
      const fresh = line === undefined;
      if (line === undefined) {
        line = {
          digest: descriptor.digest,
          state,
          done: 0,
          total: progress.total,
          attempt: progress.attempt,
          samples: [],
        };
        blobs.set(descriptor.digest, line);
      }
      const changed = fresh || line.state !== state;
      const moving = state === "downloading" || state === "uploading";
      if (moving) {
        if (line.attempt !== progress.attempt || changed) {
          // A new attempt (or the next leg through a stage): its rate starts afresh.
          line.samples = [];
          totalSamples.length = 0;
        }
        moved += Math.max(0, progress.done - line.done);
        line.started ??= t;
        line.samples.push([t, progress.done]);
        trim(line.samples, t);
        totalSamples.push([t, moved]);
        trim(totalSamples, t);
      }
      line.state = state;
      line.attempt = progress.attempt;
      line.done = progress.done;
      if (mode === "plain") {
        if (!changed || line.total < MIN_LINE_SIZE) return;
        held.delete(descriptor.digest);
        if (state === "exists") existed.add(descriptor.digest);
        if (state === "exists" || state === "mounted") {
          // Written at the end unless the command goes on with it (a pull extracts it).
          held.set(descriptor.digest, plainLine(line, t, false));
        } else if (state === "done") {
          write(plainLine(line, t, existed.has(descriptor.digest)));
        }
        return;
      }
      startTimer();
      if (t - lastDraw >= TTY_INTERVAL) draw();
    },
    pack(progress) {
      if (mode !== "tty" || finished) return;
      const t = now();
      if (progress === undefined) {
        packing = undefined;
        packSamples.length = 0;
        draw();
        return;
      }
      if (packing === undefined) packSamples.length = 0;
      packing = progress;
      packSamples.push([t, progress.bytes]);
      trim(packSamples, t);
      startTimer();
      if (t - lastDraw >= TTY_INTERVAL) draw();
    },
    message(line) {
      if (mode === "tty") clear();
      write(`${line}\n`);
      if (mode === "tty" && !finished && (blobs.size > 0 || packing)) draw();
    },
    done() {
      if (finished) return;
      finished = true;
      stopTimer?.();
      stopTimer = undefined;
      packing = undefined;
      if (mode === "tty" && blobs.size > 0) draw();
      for (const text of held.values()) write(text);
      held.clear();
      drawnLines = 0;
    },
  };
}
