/** Inputs for the parallel compressors' tests: compressible bytes, and ways to chunk them. */

/** Compressible bytes that are not all alike: text-like runs with a changing pattern. */
export function sample(size: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(size);
  let state = seed;
  for (let i = 0; i < size; i++) {
    if (i % 64 === 0) state = (state * 1103515245 + 12345) >>> 0;
    bytes[i] = 97 + ((state >>> 16) + (i % 7)) % 26;
  }
  return bytes;
}

/** Cuts bytes into chunks of the given sizes, cycling (copies: each chunk owns its buffer). */
export function chunked(bytes: Uint8Array, sizes: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let offset = 0, i = 0; offset < bytes.byteLength; i++) {
    const size = sizes[i % sizes.length];
    chunks.push(bytes.slice(offset, offset + size));
    offset += size;
  }
  return chunks;
}
