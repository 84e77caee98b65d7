import assert from "node:assert/strict";
import { zstdDecompressSync } from "node:zlib";
import {
  parallelZstd,
  ZSTD_FRAME_BYTES,
} from "../../src/layer/parallel_zstd.ts";
import { compressBlock } from "../../src/layer/block_codec.ts";
import { unzstdBounded } from "../../src/layer/zstd.ts";
import { concatBytes } from "../../src/io/bytes.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { requirePeer } from "../../peers/available.ts";

/** Compressible bytes that are not all alike: text-like runs with a changing pattern. */
function sample(size: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(size);
  let state = seed;
  for (let i = 0; i < size; i++) {
    if (i % 64 === 0) state = (state * 1103515245 + 12345) >>> 0;
    bytes[i] = 97 + ((state >>> 16) + (i % 7)) % 26;
  }
  return bytes;
}

/** Cuts bytes into chunks of the given sizes, cycling. */
function chunked(bytes: Uint8Array, sizes: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let offset = 0, i = 0; offset < bytes.byteLength; i++) {
    const size = sizes[i % sizes.length];
    chunks.push(bytes.slice(offset, offset + size));
    offset += size;
  }
  return chunks;
}

async function zstdWith(
  chunks: Uint8Array[],
  workers: number,
): Promise<Uint8Array> {
  const stream = ReadableStream.from(chunks).pipeThrough(
    parallelZstd({ workers }),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const SIZES = [
  0,
  1,
  ZSTD_FRAME_BYTES,
  2 * ZSTD_FRAME_BYTES + 17,
];

Deno.test("parallelZstd() gives the same bytes with 0, 1, 2 and 4 Workers and any chunking", async () => {
  for (const size of SIZES) {
    const input = sample(size, size + 1);
    const reference = await zstdWith([input], 0);
    for (const workers of [0, 1, 2, 4]) {
      for (const sizes of [[size || 1], [65536], [1000, 300_000, 7]]) {
        const output = await zstdWith(chunked(input, sizes), workers);
        assert.equal(
          digestOf(output),
          digestOf(reference),
          `${size} bytes, ${workers} Workers, chunks ${sizes}`,
        );
      }
    }
    assert.deepEqual(zstdDecompressSync(reference), Buffer.from(input));
  }
});

Deno.test("parallelZstd() writes one independent frame per block, with checksums, that our reader takes", async () => {
  const input = sample(3 * ZSTD_FRAME_BYTES + 5);
  const output = await zstdWith([input], 2);
  // Exactly the frames of each block compressed on its own: nothing between or around them.
  const frames = [0, 1, 2, 3].map((i) =>
    compressBlock({
      codec: "zstd",
      data: input.subarray(i * ZSTD_FRAME_BYTES, (i + 1) * ZSTD_FRAME_BYTES),
      last: i === 3,
      level: 3,
    }).slice()
  );
  assert.equal(digestOf(output), digestOf(concatBytes(frames)));
  for (const frame of frames) {
    assert.deepEqual([...frame.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd]);
    // Frame header descriptor: the content checksum flag is set.
    assert.equal(frame[4] & 0x04, 0x04);
  }
  // Our bounded reader goes from frame to frame, whatever the chunking.
  for (const size of [1, 4096, 1 << 20]) {
    const back = await new Response(
      unzstdBounded(ReadableStream.from(chunked(output, [size]))),
    ).arrayBuffer();
    assert.equal(digestOf(new Uint8Array(back)), digestOf(input));
  }
  // An empty input is one empty frame, not nothing.
  const empty = await zstdWith([], 2);
  assert.equal(zstdDecompressSync(empty).byteLength, 0);
  assert.ok(empty.byteLength > 0);
});

Deno.test({
  name: "parallelZstd() output passes `zstd -t` and `zstd -dc` gives the input",
  ...requirePeer("zstd"),
  async fn() {
    const input = sample(2 * ZSTD_FRAME_BYTES + 999);
    const path = await Deno.makeTempFile({ suffix: ".zst" });
    try {
      await Deno.writeFile(path, await zstdWith([input], 2));
      const test = await new Deno.Command("zstd", { args: ["-t", "-q", path] })
        .output();
      assert.equal(test.code, 0, new TextDecoder().decode(test.stderr));
      const out = await new Deno.Command("zstd", {
        args: ["-dc", path],
        stdout: "piped",
      }).output();
      assert.equal(digestOf(out.stdout), digestOf(input));
    } finally {
      await Deno.remove(path);
    }
  },
});

Deno.test("parallelZstd() stops its Workers when the stream is cancelled midway", async () => {
  // The test's sanitizers fail it if a Worker or its messages are left behind.
  const controller = new AbortController();
  let sent = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent++ === 5) controller.abort(new Error("stop"));
      c.enqueue(sample(ZSTD_FRAME_BYTES, sent));
    },
  });
  await assert.rejects(
    source.pipeThrough(parallelZstd({ workers: 2 })).pipeTo(
      new WritableStream(),
      { signal: controller.signal },
    ),
    /stop/,
  );
});

Deno.test("parallelZstd() tells onConsumed about each chunk once it is copied, in order", async () => {
  const chunks = chunked(sample(ZSTD_FRAME_BYTES + 10), [700_000]);
  const told: Uint8Array[] = [];
  const stream = ReadableStream.from(chunks).pipeThrough(
    parallelZstd({
      workers: 1,
      onConsumed: (chunk) => {
        told.push(chunk);
        // Freeing it here must not change the output.
        (chunk.buffer as ArrayBuffer).transfer(0);
      },
    }),
  );
  const output = new Uint8Array(await new Response(stream).arrayBuffer());
  assert.equal(told.length, chunks.length);
  told.forEach((chunk, i) => assert.equal(chunk, chunks[i]));
  assert.equal(
    zstdDecompressSync(output).byteLength,
    ZSTD_FRAME_BYTES + 10,
  );
});
