import assert from "node:assert/strict";
import { createBufferFiller } from "../../src/io/bytes.ts";
import { writeStreamToFile } from "../../src/io/files.ts";

Deno.test("createBufferFiller() tells onConsumed about a chunk only once all its bytes are copied", async () => {
  const chunks = [new Uint8Array([1, 2, 3]), new Uint8Array([4, 5, 6, 7, 8])];
  const told: Uint8Array[] = [];
  const filler = createBufferFiller(ReadableStream.from(chunks), {
    onConsumed: (chunk) => told.push(chunk),
  });
  assert.deepEqual([...await filler.fill(new Uint8Array(2))], [1, 2]);
  assert.equal(told.length, 0);
  // The rest of the first chunk and part of the second.
  assert.deepEqual([...await filler.fill(new Uint8Array(4))], [3, 4, 5, 6]);
  assert.deepEqual(told, [chunks[0]]);
  assert.equal(told[0], chunks[0]);
  assert.deepEqual([...await filler.fill(new Uint8Array(4))], [7, 8]);
  assert.equal(told.length, 2);
  assert.equal(told[1], chunks[1]);
});

Deno.test("writeStreamToFile() with onConsumed freeing each chunk still writes every byte", async () => {
  const path = await Deno.makeTempFile();
  try {
    const chunks = Array.from(
      { length: 40 },
      (_, i) => new Uint8Array(100_000 + i).fill(i),
    );
    const expected = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
    let freed = 0;
    using file = await Deno.open(path, { write: true });
    const written = await writeStreamToFile(ReadableStream.from(chunks), file, {
      onConsumed: (chunk) => {
        (chunk.buffer as ArrayBuffer).transfer(0);
        freed++;
      },
    });
    assert.equal(written, expected);
    assert.equal(freed, chunks.length);
    const back = await Deno.readFile(path);
    let offset = 0;
    for (let i = 0; i < 40; i++) {
      const size = 100_000 + i;
      assert.ok(back.subarray(offset, offset + size).every((b) => b === i));
      offset += size;
    }
  } finally {
    await Deno.remove(path);
  }
});
