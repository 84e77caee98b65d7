import assert from "node:assert/strict";
import {
  GZIP_BLOCK_BYTES,
  parallelGzip,
} from "../../src/layer/parallel_gzip.ts";
import {
  parallelZstd,
  ZSTD_FRAME_BYTES,
} from "../../src/layer/parallel_zstd.ts";
import type { ParallelOptions } from "../../src/layer/parallel_blocks.ts";
import { sample } from "../support/compressible.ts";

const COMPRESSORS = [
  { name: "parallelGzip", make: parallelGzip, block: GZIP_BLOCK_BYTES },
  { name: "parallelZstd", make: parallelZstd, block: ZSTD_FRAME_BYTES },
] as const satisfies readonly {
  name: string;
  make: (options: ParallelOptions) => TransformStream<Uint8Array, Uint8Array>;
  block: number;
}[];

for (const { name, make, block } of COMPRESSORS) {
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
