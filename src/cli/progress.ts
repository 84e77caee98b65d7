/**
 * Transfer progress for the CLI: a line per blob redrawn in place on a terminal, periodic plain
 * lines otherwise, nothing when quiet.
 *
 * @module
 */
import type { TransferProgress } from "../store/remote/progress.ts";

/** Transfers smaller than this get no progress display. */
const MIN_SIZE = 4 * 1024 * 1024;
/** Plain (non-terminal) lines at most this often per blob. */
const PLAIN_INTERVAL = 5000;
/** Terminal redraws at most this often. */
const TTY_INTERVAL = 100;

function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** Where progress goes and how. */
export interface ProgressDisplay {
  /** Reports bytes moved for one blob. */
  update(progress: TransferProgress): void;
  /**
   * Writes a line of its own (a warning such as a retry) whatever the mode: on a terminal, the
   * progress line is cleared first and drawn again at the next update.
   */
  message(line: string): void;
  /** Ends the display (clears a terminal line). */
  done(): void;
}

/**
 * Makes a progress display writing to standard error.
 *
 * @param mode `tty` to redraw one line, `plain` for periodic lines, `quiet` for nothing.
 * @param write Where text goes.
 * @param now The clock in milliseconds.
 * @returns The display.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createProgressDisplay } from "./progress.ts";
 * const lines: string[] = [];
 * let clock = 0;
 * const display = createProgressDisplay("plain", (text) => lines.push(text), () => clock);
 * display.update({ digest: "sha256:abcdef0123456789", done: 8 << 20, total: 16 << 20 });
 * clock = 6000;
 * display.update({ digest: "sha256:abcdef0123456789", done: 16 << 20, total: 16 << 20 });
 * assert.equal(lines.length, 2);
 * display.message("oci: retrying");
 * assert.equal(lines[2], "oci: retrying\n");
 * ```
 */
export function createProgressDisplay(
  mode: "tty" | "plain" | "quiet",
  write: (text: string) => void,
  now: () => number = Date.now,
): ProgressDisplay {
  const started = new Map<string, number>();
  const shown = new Map<string, number>();
  let lastDraw = 0;
  let drawn = false;
  return {
    update(progress) {
      if (mode === "quiet") return;
      if ((progress.total ?? progress.done) < MIN_SIZE) return;
      const t = now();
      if (!started.has(progress.digest)) started.set(progress.digest, t);
      const elapsed = Math.max(
        (t - started.get(progress.digest)!) / 1000,
        0.001,
      );
      const rate = progress.done / elapsed;
      const total = progress.total;
      const eta = total !== undefined && rate > 0
        ? Math.max(0, (total - progress.done) / rate)
        : undefined;
      const finished = total !== undefined && progress.done >= total;
      const text = `${progress.digest.slice(0, 19)} ${
        formatBytes(progress.done)
      }${total !== undefined ? ` / ${formatBytes(total)}` : ""} ${
        formatBytes(rate)
      }/s${eta !== undefined ? ` ETA ${eta.toFixed(0)}s` : ""}`;
      if (mode === "tty") {
        if (!finished && t - lastDraw < TTY_INTERVAL) return;
        lastDraw = t;
        drawn = true;
        write(`\r\x1b[2K${text}`);
        return;
      }
      const last = shown.get(progress.digest);
      if (!finished && last !== undefined && t - last < PLAIN_INTERVAL) return;
      shown.set(progress.digest, t);
      write(`${text}\n`);
    },
    message(line) {
      if (mode === "tty" && drawn) {
        write("\r\x1b[2K");
        drawn = false;
        lastDraw = 0;
      }
      write(`${line}\n`);
    },
    done() {
      if (mode === "tty" && drawn) write("\r\x1b[2K");
    },
  };
}
