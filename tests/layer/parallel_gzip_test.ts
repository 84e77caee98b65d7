import assert from "node:assert/strict";
import {
  GZIP_BLOCK_BYTES,
  parallelGzip,
} from "../../src/layer/parallel_gzip.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { requirePeer } from "../../peers/available.ts";
import { sample } from "../support/compressible.ts";

async function gzipWith(
  chunks: Uint8Array[],
  workers: number,
): Promise<Uint8Array> {
  const stream = ReadableStream.from(chunks).pipeThrough(
    parallelGzip({ workers }),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

Deno.test("parallelGzip() writes one gzip member DecompressionStream reads (it refuses several)", async () => {
  const input = sample(3 * GZIP_BLOCK_BYTES + 5);
  const output = await gzipWith([input], 2);
  // One header, at the start: no mtime, no name.
  assert.deepEqual([...output.subarray(0, 4)], [0x1f, 0x8b, 8, 0]);
  const view = new DataView(output.buffer, output.byteOffset);
  assert.equal(view.getUint32(output.byteLength - 4, true), input.byteLength);
  const back = ReadableStream.from([output]).pipeThrough(
    new DecompressionStream("gzip") as unknown as TransformStream<
      Uint8Array,
      Uint8Array
    >,
  );
  const bytes = new Uint8Array(await new Response(back).arrayBuffer());
  assert.equal(digestOf(bytes), digestOf(input));
});

for (const tool of ["gzip", "pigz"]) {
  Deno.test({
    name:
      `parallelGzip() output passes \`${tool} -t\` and decompresses to the input`,
    ...requirePeer(tool),
    async fn() {
      const input = sample(2 * GZIP_BLOCK_BYTES + 999);
      const path = await Deno.makeTempFile({ suffix: ".gz" });
      try {
        await Deno.writeFile(path, await gzipWith([input], 2));
        const test = await new Deno.Command(tool, { args: ["-t", path] })
          .output();
        assert.equal(test.code, 0, new TextDecoder().decode(test.stderr));
        const out = await new Deno.Command(tool, {
          args: ["-dc", path],
          stdout: "piped",
        }).output();
        assert.equal(digestOf(out.stdout), digestOf(input));
      } finally {
        await Deno.remove(path);
      }
    },
  });
}

Deno.test("parallelGzip() with Workers holds a bounded number of blocks", async () => {
  // A slow reader: writes must wait instead of queueing every block.
  let pulled = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(c) {
      if (pulled++ === 40) return c.close();
      c.enqueue(sample(GZIP_BLOCK_BYTES, pulled));
    },
  }, { highWaterMark: 0 });
  const reader = source.pipeThrough(parallelGzip({ workers: 2 })).getReader();
  await reader.read();
  await new Promise((resolve) => setTimeout(resolve, 200));
  // Header read; the stream pulled at most the blocks out (2 per Worker), the one being
  // filled and what the queues between hold, never all 40.
  assert.ok(pulled < 12, `${pulled} blocks pulled`);
  await reader.cancel();
});
