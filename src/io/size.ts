/**
 * Bytes and rates as people read them: binary units (B, KiB, MiB, GiB, TiB) and the same per
 * second, the one unit system of every message (progress lines, transfer logs, `inspect`).
 *
 * @module
 */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/**
 * Bytes in binary units, one decimal above bytes.
 *
 * @param bytes A count of bytes.
 * @returns E.g. `512 B`, `3.0 MiB`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSize } from "./size.ts";
 * assert.equal(formatSize(512), "512 B");
 * assert.equal(formatSize(3 * 1024 * 1024), "3.0 MiB");
 * ```
 */
export function formatSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${UNITS[unit]}`;
}

/**
 * Bytes per second in the units of {@linkcode formatSize}.
 *
 * @param bytesPerSecond The rate.
 * @returns E.g. `2.0 MiB/s`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatRate } from "./size.ts";
 * assert.equal(formatRate(2 * 1024 * 1024), "2.0 MiB/s");
 * ```
 */
export function formatRate(bytesPerSecond: number): string {
  return `${formatSize(bytesPerSecond)}/s`;
}
