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
import { chunked, sample } from "../support/compressible.ts";

async function zstdWith(
  chunks: Uint8Array[],
  workers: number,
): Promise<Uint8Array> {
  const stream = ReadableStream.from(chunks).pipeThrough(
    parallelZstd({ workers }),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

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
