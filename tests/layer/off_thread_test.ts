import assert from "node:assert/strict";
import { zstdCompressSync } from "node:zlib";
import {
  decompressAndDigestOffThread,
  decompressOffThread,
} from "../../src/layer/off_thread.ts";
import { compress } from "../../src/layer/compression.ts";
import { ZSTD_FRAME_BYTES } from "../../src/layer/parallel_zstd.ts";
import { ZstdFormatError } from "../../src/layer/zstd.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { chunked, sample } from "../support/compressible.ts";
import { FALLBACKS, withWorker } from "../support/workers.ts";

async function bytesOf(
  stream: ReadableStream<Uint8Array>,
): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Our zstd (independent 2 MiB frames, as createLayer writes them). */
async function zstdOf(input: Uint8Array): Promise<Uint8Array> {
  return await bytesOf(compress(ReadableStream.from([input]), "zstd"));
}

const SIZES = [1, 100_000, ZSTD_FRAME_BYTES, 2 * ZSTD_FRAME_BYTES + 17];
const CHUNKINGS = [[1 << 30], [65536], [1000, 300_000, 7]];

Deno.test("decompressAndDigestOffThread() gives the digest of exactly the bytes it decompressed, one zstd frame or several, any chunking", async () => {
  for (const size of SIZES) {
    const input = sample(size, size);
    const zst = await zstdOf(input);
    for (const sizes of CHUNKINGS) {
      const what = `${size} bytes, chunks ${sizes}`;
      const { stream, digest } = decompressAndDigestOffThread(
        ReadableStream.from(chunked(zst, sizes)),
        "zstd",
      );
      const output = await bytesOf(stream);
      assert.equal(digestOf(output), digestOf(input), what);
      assert.equal(await digest, digestOf(input), what);
    }
  }
  // Another encoder's single frame, and gzip and none (hashed on this thread).
  const input = sample(3 * 1024 * 1024 + 5, 9);
  for (
    const [what, bytes, compression] of [
      ["zstd, one frame", zstdCompressSync(input), "zstd"],
      [
        "gzip",
        await bytesOf(compress(ReadableStream.from([input]), "gzip")),
        "gzip",
      ],
      ["none", input, "none"],
    ] as const
  ) {
    const { stream, digest } = decompressAndDigestOffThread(
      ReadableStream.from(chunked(new Uint8Array(bytes), [123_457])),
      compression,
    );
    assert.equal(digestOf(await bytesOf(stream)), digestOf(input), what);
    assert.equal(await digest, digestOf(input), what);
  }
});

Deno.test("decompressAndDigestOffThread() digests on this thread when no Worker can start, with the same bytes and digest", async () => {
  const input = sample(2 * ZSTD_FRAME_BYTES + 17, 3);
  const zst = await zstdOf(input);
  for (const [fallback, worker] of Object.entries(FALLBACKS)) {
    for (const sizes of [[65536], [1000, 300_000, 7]]) {
      const what = `${fallback}, chunks ${sizes}`;
      await withWorker(worker, async () => {
        const { stream, digest } = decompressAndDigestOffThread(
          ReadableStream.from(chunked(zst, sizes)),
          "zstd",
        );
        assert.equal(digestOf(await bytesOf(stream)), digestOf(input), what);
        assert.equal(await digest, digestOf(input), what);
        // And without a digest asked for, the same bytes.
        const plain = decompressOffThread(
          ReadableStream.from(chunked(zst, sizes)),
          "zstd",
        );
        assert.equal(digestOf(await bytesOf(plain)), digestOf(input), what);
      });
    }
  }
});

Deno.test("a cut or damaged zstd stream fails with a ZstdFormatError and no digest, on the Worker and on this thread", async () => {
  const input = sample(2 * ZSTD_FRAME_BYTES + 17, 5);
  const zst = await zstdOf(input);
  const damaged = zst.slice();
  // The second frame's first block header: a reserved block type (3).
  damaged.fill(0xff, zst.byteLength - 20, zst.byteLength - 10);
  const cases: [string, Uint8Array][] = [
    ["cut", zst.slice(0, zst.byteLength - 3)],
    ["cut midway", zst.slice(0, zst.byteLength >> 1)],
    ["damaged", damaged],
  ];
  for (
    const [fallback, worker] of [
      ["Worker", globalThis.Worker] as const,
      ...Object.entries(FALLBACKS),
    ]
  ) {
    for (const [what, bytes] of cases) {
      await withWorker(worker, async () => {
        const { stream, digest } = decompressAndDigestOffThread(
          ReadableStream.from(chunked(bytes, [65536])),
          "zstd",
        );
        await assert.rejects(
          bytesOf(stream),
          ZstdFormatError,
          `${fallback}: ${what}`,
        );
        await assert.rejects(digest, ZstdFormatError, `${fallback}: ${what}`);
      });
    }
  }
});

Deno.test("a decompressed stream cancelled midway gives no digest (and stops its Worker)", async () => {
  const input = sample(2 * ZSTD_FRAME_BYTES + 17, 7);
  const zst = await zstdOf(input);
  for (
    const [fallback, worker] of [
      ["Worker", globalThis.Worker] as const,
      ...Object.entries(FALLBACKS),
    ]
  ) {
    await withWorker(worker, async () => {
      const { stream, digest } = decompressAndDigestOffThread(
        ReadableStream.from(chunked(zst, [65536])),
        "zstd",
      );
      const reader = stream.getReader();
      assert.equal((await reader.read()).done, false, fallback);
      await reader.cancel("enough");
      await assert.rejects(digest, /cancelled before its end/, fallback);
    });
  }
  // A stream left with its digest unawaited, cancelled: no unhandled rejection fails the test.
  const { stream } = decompressAndDigestOffThread(
    ReadableStream.from([zst]),
    "zstd",
  );
  await stream.cancel();
});
