import assert from "node:assert/strict";
import { concatBytes } from "../../src/io/bytes.ts";
import {
  constants,
  createZstdCompress,
  gzipSync,
  zstdCompressSync,
} from "node:zlib";
import {
  compress,
  type Compression,
  compressionOfLayer,
  COMPRESSIONS,
  decompress,
  layerMediaType,
} from "../../src/layer/compression.ts";
import { unzstdBounded, ZstdFormatError } from "../../src/layer/zstd.ts";
import { GzipFormatError } from "../../src/layer/gunzip.ts";
import { pseudoRandomBytes } from "../support/images.ts";
import { requirePeer } from "../../peers/available.ts";

const encoder = new TextEncoder();

/** `bytes` as a stream of chunks of `size` bytes (copies, as a socket would give them). */
function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.byteLength) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + size));
      offset += size;
    },
  });
}

async function bytesOf(
  stream: ReadableStream<Uint8Array>,
): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Runs a peer program with `input` on stdin. */
async function run(
  command: string,
  args: string[],
  input: Uint8Array,
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const child = new Deno.Command(command, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(input);
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  return { code, stdout, stderr: new TextDecoder().decode(stderr) };
}

Deno.test("layerMediaType() and compressionOfLayer() agree on OCI's and Docker's six tar types", () => {
  const table: [string, Compression][] = [
    ["application/vnd.oci.image.layer.v1.tar+gzip", "gzip"],
    ["application/vnd.oci.image.layer.v1.tar+zstd", "zstd"],
    ["application/vnd.oci.image.layer.v1.tar", "none"],
    ["application/vnd.docker.image.rootfs.diff.tar.gzip", "gzip"],
    ["application/vnd.docker.image.rootfs.diff.tar.zstd", "zstd"],
    ["application/vnd.docker.image.rootfs.diff.tar", "none"],
  ];
  for (const [mediaType, compression] of table) {
    assert.equal(compressionOfLayer(mediaType), compression, mediaType);
    const format = mediaType.includes("docker") ? "docker" : "oci";
    assert.equal(layerMediaType(compression, format), mediaType);
  }
  assert.equal(
    compressionOfLayer("Application/Vnd.OCI.Image.Layer.v1.Tar+Zstd; x=y"),
    "zstd",
  );
  for (
    const other of [
      undefined,
      "",
      "application/vnd.oci.image.config.v1+json",
      "application/vnd.oci.image.layer.v1.tar+bzip2",
    ]
  ) {
    assert.equal(compressionOfLayer(other), undefined, String(other));
  }
});

Deno.test("compress() then decompress() gives the bytes back, whatever the chunking", async () => {
  const text = encoder.encode("layer content ".repeat(50_000));
  const noise = pseudoRandomBytes(300_000, 7);
  for (const compression of COMPRESSIONS) {
    for (const input of [text, noise, new Uint8Array(0)]) {
      const packed = await bytesOf(
        compress(chunked(input, 65536), compression),
      );
      if (compression !== "none" && input === text) {
        assert.ok(packed.byteLength < input.byteLength / 10, compression);
      }
      for (const size of [1, 7, 4096, 1 << 20]) {
        if (size === 1 && packed.byteLength > 100_000) continue;
        const back = await bytesOf(
          decompress(chunked(packed, size), compression),
        );
        assert.deepEqual(back, input, `${compression}, chunks of ${size}`);
      }
    }
  }
});

Deno.test({
  name:
    "compress() writes zstd that zstd reads, one frame with its checksum, at zstd -3's size",
  ...requirePeer("zstd"),
  async fn() {
    const input = encoder.encode(
      Array.from({ length: 20_000 }, (_, i) => `line ${i} of a layer\n`).join(
        "",
      ),
    );
    const packed = await bytesOf(compress(chunked(input, 65536), "zstd"));
    const decoded = await run("zstd", ["-dc"], packed);
    assert.equal(decoded.code, 0, decoded.stderr);
    assert.deepEqual(decoded.stdout, input);
    // The frame header's descriptor: bit 2 is the content checksum.
    assert.deepEqual([...packed.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd]);
    assert.ok(packed[4] & 0x04, "the frame carries a checksum");
    const cli = await run("zstd", ["-3", "-c"], input);
    assert.ok(
      Math.abs(packed.byteLength - cli.stdout.byteLength) <
        cli.stdout.byteLength / 10,
      `ours ${packed.byteLength} bytes, zstd -3 ${cli.stdout.byteLength}`,
    );
  },
});

Deno.test("unzstdBounded() reads concatenated frames and skips skippable ones (empty too), in chunks of any size", async () => {
  const a = zstdCompressSync(encoder.encode("a".repeat(1000)));
  const b = zstdCompressSync(pseudoRandomBytes(100_000, 3));
  const skippable = new Uint8Array([
    0x5e,
    0x2a,
    0x4d,
    0x18,
    3,
    0,
    0,
    0,
    1,
    2,
    3,
  ]);
  // An empty skippable frame last: nothing follows its size field.
  const empty = new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]);
  const stream = new Uint8Array([...a, ...skippable, ...b, ...a, ...empty]);
  const expected = new Uint8Array([
    ...encoder.encode("a".repeat(1000)),
    ...pseudoRandomBytes(100_000, 3),
    ...encoder.encode("a".repeat(1000)),
  ]);
  for (const size of [1, 2, 3, 5, 11, 4096, stream.byteLength]) {
    assert.deepEqual(
      await bytesOf(unzstdBounded(chunked(stream, size))),
      expected,
      `chunks of ${size}`,
    );
  }
});

/** The error reading `bytes` as zstd gives (in chunks of `size`). */
async function zstdFailure(bytes: Uint8Array, size = 4096): Promise<Error> {
  try {
    await bytesOf(unzstdBounded(chunked(bytes, size)));
  } catch (error) {
    return error as Error;
  }
  throw new Error(`${bytes.byteLength} bytes were read as zstd`);
}

Deno.test("unzstdBounded() refuses zstd cut anywhere, trailing bytes, garbage and nothing, with a ZstdFormatError", async () => {
  const frame = zstdCompressSync(encoder.encode("hello zstd ".repeat(200)), {
    params: { [constants.ZSTD_c_checksumFlag]: 1 },
  });
  for (let cut = 1; cut < frame.byteLength; cut++) {
    for (const size of [1, 4096]) {
      const error = await zstdFailure(frame.subarray(0, cut), size);
      assert.ok(error instanceof ZstdFormatError, `cut at ${cut}: ${error}`);
      assert.match(error.message, /truncated: it ends inside frame 1/);
    }
  }
  const trailing = await zstdFailure(new Uint8Array([...frame, 1, 2, 3, 4]));
  assert.ok(trailing instanceof ZstdFormatError);
  assert.match(
    trailing.message,
    new RegExp(`no zstd frame follow frame 1 at byte ${frame.byteLength}`),
  );
  const garbage = await zstdFailure(encoder.encode("\x1f\x8b gzip, not zstd"));
  assert.match(garbage.message, /not zstd/);
  const empty = await zstdFailure(new Uint8Array(0));
  assert.match(empty.message, /holds no zstd frame/);
  // A byte changed in a block: the decoder (or the checksum) finds it.
  const damaged = frame.slice();
  damaged[Math.floor(frame.byteLength / 2)] ^= 0x55;
  const error = await zstdFailure(damaged);
  assert.ok(error instanceof ZstdFormatError, String(error));
});

/** A zstd frame whose header asks for a window of 2^windowLog bytes. */
async function frameWithWindow(windowLog: number): Promise<Uint8Array> {
  const encoderStream = createZstdCompress({
    params: { [constants.ZSTD_c_windowLog]: windowLog },
  });
  const parts: Uint8Array<ArrayBuffer>[] = [];
  encoderStream.on("data", (part: Uint8Array<ArrayBuffer>) => parts.push(part));
  // Two writes with a flush between: the size is not known up front, so the window stays.
  encoderStream.write(encoder.encode("hello"));
  await new Promise((resolve) => encoderStream.flush(() => resolve(undefined)));
  const ended = new Promise((resolve) => encoderStream.on("end", resolve));
  encoderStream.end(encoder.encode(" world"));
  await ended;
  return new Uint8Array(await new Blob(parts).arrayBuffer());
}

Deno.test("unzstdBounded() takes a 32 MiB window and refuses a larger one, naming the limit", async () => {
  assert.equal(
    new TextDecoder().decode(
      await bytesOf(unzstdBounded(chunked(await frameWithWindow(25), 4096))),
    ),
    "hello world",
  );
  const error = await zstdFailure(await frameWithWindow(26));
  assert.ok(error instanceof ZstdFormatError, String(error));
  assert.match(error.message, /window larger than 32 MiB/);
});

Deno.test("decompress() of zstd makes output only as it is read: a 1 GiB bomb holds a few chunks", async () => {
  // 32 KiB of zstd that inflates to 1 GiB of zeros.
  const bomb = zstdCompressSync(new Uint8Array(64 * 1024 * 1024));
  const bombs = new Uint8Array(bomb.byteLength * 16);
  for (let i = 0; i < 16; i++) bombs.set(bomb, i * bomb.byteLength);
  const reader = decompress(chunked(bombs, bombs.byteLength), "zstd")
    .getReader();
  const first = await reader.read();
  assert.ok(!first.done && first.value.byteLength <= 256 * 1024);
  // Given time, the decoder does not run ahead of the reader.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const external = Deno.memoryUsage().external;
  let total = first.value!.byteLength;
  let peak = external;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.byteLength;
    // Done with, freed now as extractLayer frees them (each chunk owns its buffer).
    assert.equal(value.byteLength, value.buffer.byteLength);
    (value.buffer as ArrayBuffer).transfer(0);
    if (total % (64 * 1024 * 1024) === 0) {
      peak = Math.max(peak, Deno.memoryUsage().external);
    }
  }
  assert.equal(total, 1024 * 1024 * 1024);
  assert.ok(
    peak - external < 64 * 1024 * 1024,
    `array buffers grew by ${((peak - external) / 1024 / 1024).toFixed(0)} MiB`,
  );
});

Deno.test("decompress() stops the zstd decoder when its reader cancels", async () => {
  const bomb = zstdCompressSync(new Uint8Array(64 * 1024 * 1024));
  let cancelled: unknown;
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(bomb.slice());
    },
    cancel(reason) {
      cancelled = reason;
    },
  });
  const reader = decompress(source, "zstd").getReader();
  await reader.read();
  await reader.cancel("enough");
  assert.equal(cancelled, "enough");
});

/** One gzip member holding `bytes` (a fresh array: a Buffer's `slice` would share memory). */
function member(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(bytes));
}

async function gzipFailure(
  bytes: Uint8Array,
  size: number,
): Promise<GzipFormatError> {
  try {
    await bytesOf(decompress(chunked(bytes, size), "gzip"));
  } catch (error) {
    assert.ok(error instanceof GzipFormatError, String(error));
    return error;
  }
  throw new Error(`${bytes.byteLength} bytes in chunks of ${size} were read`);
}

Deno.test("decompress() reads multi-member gzip as the concatenation of its members, in chunks of any size", async () => {
  const text = encoder.encode("a member of a layer\n".repeat(5000));
  const noise = pseudoRandomBytes(200_000, 3);
  const parts = [text, noise, new Uint8Array(0), text.subarray(0, 77)];
  const whole = concatBytes(parts);
  const members = concatBytes(parts.map(member));
  // bgzip-like: many small members (64 KiB of input each).
  const blocks: Uint8Array[] = [];
  for (let at = 0; at < whole.byteLength; at += 65536) {
    blocks.push(member(whole.subarray(at, at + 65536)));
  }
  for (const packed of [members, concatBytes(blocks)]) {
    for (const size of [1, 7, 18, 4096, 65536, 1 << 20]) {
      if (size === 1 && packed.byteLength > 100_000) continue;
      assert.deepEqual(
        await bytesOf(decompress(chunked(packed, size), "gzip")),
        whole,
        `${packed === members ? "members" : "blocks"}, chunks of ${size}`,
      );
    }
  }
  // Zeros after the last member are padding, as gzip -t takes them.
  const padded = concatBytes([members, new Uint8Array(100_000)]);
  assert.deepEqual(
    await bytesOf(decompress(chunked(padded, 4096), "gzip")),
    whole,
  );
});

Deno.test("decompress() refuses gzip that is cut, damaged, not gzip, or followed by other bytes, with a GzipFormatError", async () => {
  const one = member(encoder.encode("first member ".repeat(2000)));
  const two = member(pseudoRandomBytes(50_000, 9));
  const both = concatBytes([one, two]);
  for (const size of [13, 4096, 1 << 20]) {
    for (
      const cut of [
        one.byteLength + 5,
        one.byteLength + 30,
        both.byteLength - 4,
      ]
    ) {
      const error = await gzipFailure(both.subarray(0, cut), size);
      assert.match(
        error.message,
        /truncated/,
        `cut at ${cut}, chunks of ${size}`,
      );
    }
    const crc = both.slice();
    crc[crc.byteLength - 6] ^= 0xff;
    assert.match(
      (await gzipFailure(crc, size)).message,
      /damaged: incorrect data check/,
    );
    const body = both.slice();
    body[one.byteLength + 200] ^= 0xff;
    assert.match((await gzipFailure(body, size)).message, /damaged/);
    const junk = await gzipFailure(
      concatBytes([both, encoder.encode("junk")]),
      size,
    );
    assert.match(
      junk.message,
      /bytes that are no gzip member follow the gzip data/,
    );
    const late = await gzipFailure(
      concatBytes([both, new Uint8Array(70_000), encoder.encode("junk")]),
      size,
    );
    assert.match(
      late.message,
      new RegExp(`byte ${both.byteLength + 70_000} is not zero`),
    );
    assert.match(
      (await gzipFailure(encoder.encode("plain tar, not gzip"), size)).message,
      /not gzip/,
    );
  }
  assert.match((await gzipFailure(new Uint8Array(0), 1)).message, /empty/);
});
