/**
 * Small byte helpers shared by the client and the server: joining chunks, and reading a stream
 * into memory only up to a limit (manifests, error bodies).
 *
 * @module
 */

/**
 * Joins chunks into one array.
 *
 * @param chunks The chunks, in order.
 * @returns Their bytes in one array.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { concatBytes } from "./bytes.ts";
 * assert.deepEqual(concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]), new Uint8Array([1, 2, 3]));
 * ```
 */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  const size = chunks.reduce((total, chunk) => total + chunk.byteLength, 0);
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/**
 * Reads a stream into memory, stopping as soon as it has more than `limit` bytes.
 *
 * @param stream The bytes (null reads as empty).
 * @param limit The most bytes accepted.
 * @returns The bytes, or undefined when there were more than `limit` (the stream is cancelled).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readAtMost } from "./bytes.ts";
 * assert.equal((await readAtMost(new Response("abc").body, 3))?.byteLength, 3);
 * assert.equal(await readAtMost(new Response("abcd").body, 3), undefined);
 * ```
 */
export async function readAtMost(
  stream: ReadableStream<Uint8Array> | null,
  limit: number,
): Promise<Uint8Array | undefined> {
  if (stream === null) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return concatBytes(chunks);
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
}
