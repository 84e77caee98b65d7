/**
 * File helpers for everything that writes to disk: a stat that answers undefined for missing
 * files, and atomic writes (temporary file beside the target, then rename).
 *
 * @module
 */

/**
 * A random suffix for temporary names.
 *
 * @returns Two random 32-bit numbers joined by a dash.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { randomSuffix } from "./files.ts";
 * assert.match(randomSuffix(), /^\d+-\d+$/);
 * ```
 */
export function randomSuffix(): string {
  return crypto.getRandomValues(new Uint32Array(2)).join("-");
}

/**
 * Stats a path, following links.
 *
 * @param path The path.
 * @returns Its info, or undefined when it does not exist.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { statOrUndefined } from "./files.ts";
 * assert.equal(await statOrUndefined("/no/such/file"), undefined);
 * ```
 */
export async function statOrUndefined(
  path: string,
): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * Writes a file atomically: readers see the old content or the new, never a part.
 *
 * @param path The file.
 * @param bytes Its new content.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeFileAtomic } from "./files.ts";
 * const path = await Deno.makeTempFile();
 * await writeFileAtomic(path, new TextEncoder().encode("new"));
 * assert.equal(await Deno.readTextFile(path), "new");
 * await Deno.remove(path);
 * ```
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
): Promise<void> {
  const temp = `${path}.tmp-${randomSuffix()}`;
  try {
    await Deno.writeFile(temp, bytes);
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}
