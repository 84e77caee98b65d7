import assert from "node:assert/strict";
import { gunzipSync, zstdDecompressSync } from "node:zlib";
import {
  GZIP_BLOCK_BYTES,
  parallelGzip,
} from "../../src/layer/parallel_gzip.ts";
import {
  parallelZstd,
  ZSTD_FRAME_BYTES,
} from "../../src/layer/parallel_zstd.ts";
import type { ParallelOptions } from "../../src/layer/parallel_blocks.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { chunked, sample } from "../support/compressible.ts";

const COMPRESSORS = [
  {
    name: "parallelGzip",
    make: parallelGzip,
    block: GZIP_BLOCK_BYTES,
    unpack: gunzipSync,
  },
  {
    name: "parallelZstd",
    make: parallelZstd,
    block: ZSTD_FRAME_BYTES,
    unpack: zstdDecompressSync,
  },
] as const satisfies readonly {
  name: string;
  make: (options: ParallelOptions) => TransformStream<Uint8Array, Uint8Array>;
  block: number;
  unpack: (bytes: Uint8Array) => Uint8Array;
}[];

for (const { name, make, block, unpack } of COMPRESSORS) {
  const compressWith = async (chunks: Uint8Array[], workers: number) =>
    new Uint8Array(
      await new Response(
        ReadableStream.from(chunks).pipeThrough(make({ workers })),
      ).arrayBuffer(),
    );

  Deno.test(`${name}() gives the same bytes with 0, 1, 2 and 4 Workers and any chunking`, async () => {
    for (const size of [0, 1, block, 2 * block + 17, 3 * block + block / 2]) {
      const input = sample(size, size + 1);
      const reference = await compressWith([input], 0);
      for (const workers of [0, 1, 2, 4]) {
        for (const sizes of [[size || 1], [65536], [1000, 300_000, 7]]) {
          const output = await compressWith(chunked(input, sizes), workers);
          assert.equal(
            digestOf(output),
            digestOf(reference),
            `${size} bytes, ${workers} Workers, chunks ${sizes}`,
          );
        }
      }
      assert.deepEqual(unpack(reference), Buffer.from(input));
    }
  });

  Deno.test(`${name}() stops its Workers when the stream is cancelled midway`, async () => {
    // The test's sanitizers fail it if a Worker or its messages are left behind.
    const controller = new AbortController();
    let sent = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent++ === 5) controller.abort(new Error("stop"));
        c.enqueue(sample(block, sent));
      },
    });
    await assert.rejects(
      source.pipeThrough(make({ workers: 2 })).pipeTo(
        new WritableStream(),
        { signal: controller.signal },
      ),
      /stop/,
    );
  });

  Deno.test(`${name}() tells onConsumed about each chunk once it is copied, in order`, async () => {
    const chunks = Array.from(
      { length: 5 },
      (_, i) => sample(Math.floor(block / 2) + i, i + 1),
    );
    const told: Uint8Array[] = [];
    const reference = await new Response(
      ReadableStream.from(chunks.map((chunk) => chunk.slice()))
        .pipeThrough(make({ workers: 0 })),
    ).arrayBuffer();
    const output = await new Response(
      ReadableStream.from(chunks).pipeThrough(make({
        workers: 1,
        onConsumed: (chunk) => {
          told.push(chunk);
          // Freeing it here must not change the output.
          (chunk.buffer as ArrayBuffer).transfer(0);
        },
      })),
    ).arrayBuffer();
    assert.equal(told.length, chunks.length);
    told.forEach((chunk, i) => assert.equal(chunk, chunks[i]));
    assert.deepEqual(new Uint8Array(output), new Uint8Array(reference));
  });
}

Deno.test("a block a Worker cannot compress fails the stream, naming the codec, and stops the Workers", async () => {
  // zlib refuses level 42 in the Worker; the refusal comes back as the stream's error.
  const source = ReadableStream.from([sample(3 * GZIP_BLOCK_BYTES)]);
  await assert.rejects(
    new Response(source.pipeThrough(parallelGzip({ level: 42, workers: 2 })))
      .arrayBuffer(),
    /^Error: deflate: .*level/i,
  );
});
