import assert from "node:assert/strict";
import {
  DigestError,
  DigestMismatchError,
  digestOf,
  DigestStream,
  formatDigest,
  parseDigest,
  verifyStream,
} from "../../src/oci/digest.ts";
import { openOnRead } from "../../src/io/bytes.ts";
import { requirePeer } from "../../peers/available.ts";

const A64 = "a".repeat(64);
const A128 = "a".repeat(128);

Deno.test("parseDigest() accepts sha256 and sha512 and prints them back", () => {
  for (const text of [`sha256:${A64}`, `sha512:${A128}`]) {
    const digest = parseDigest(text);
    assert.equal(formatDigest(digest), text);
  }
  assert.deepEqual(parseDigest(`sha512:${A128}`), {
    algorithm: "sha512",
    encoded: A128,
  });
});

const failures: [string, RegExp][] = [
  [A64, /missing algorithm/],
  [`:${A64}`, /missing algorithm before the colon/],
  [`md5:${"a".repeat(32)}`, /unknown algorithm "md5"/],
  [`SHA256:${A64}`, /unknown algorithm "SHA256"/],
  [`sha256:${"a".repeat(63)}`, /sha256 needs 64 hex characters, got 63/],
  [`sha256:${"a".repeat(65)}`, /got 65/],
  [`sha256:`, /got 0/],
  [`sha512:${A64}`, /sha512 needs 128 hex characters, got 64/],
  [`sha256:${"g".repeat(64)}`, /not hex/],
  [`sha256:${"A".repeat(64)}`, /must be lowercase/],
  [`sha256:${"a".repeat(63)} `, /not hex/],
  [`sha256:abcdef`, /got 6/],
];

for (const [text, reason] of failures) {
  Deno.test(`parseDigest() rejects ${JSON.stringify(text.slice(0, 20))}… naming ${reason.source}`, () => {
    const error = assert.throws(() => parseDigest(text), (e: unknown) => {
      assert.ok(e instanceof DigestError);
      assert.ok(e instanceof SyntaxError);
      assert.match(e.message, reason);
      assert.ok(e.message.includes(`"${text}"`), "message quotes the input");
      assert.equal(e.input, text);
      return true;
    });
    return error;
  });
}

Deno.test("digestOf() hashes strings and bytes alike", () => {
  assert.equal(
    digestOf("hello"),
    "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
  );
  assert.equal(digestOf(new TextEncoder().encode("hello")), digestOf("hello"));
  assert.match(digestOf("hello", "sha512"), /^sha512:[0-9a-f]{128}$/);
});

Deno.test("DigestStream passes each chunk on unchanged before taking the next", async () => {
  const hasher = new DigestStream();
  const writer = hasher.writable.getWriter();
  const reader = hasher.readable.getReader();
  const chunks = [1, 2, 3].map((n) => new Uint8Array(1000).fill(n));
  for (const chunk of chunks) {
    const written = writer.write(chunk);
    const { value } = await reader.read();
    assert.equal(
      value,
      chunk,
      "the same chunk object comes out, nothing is copied or held",
    );
    await written;
  }
  await writer.close();
  assert.equal((await reader.read()).done, true);
  const joined = new Uint8Array(3000);
  chunks.forEach((c, i) => joined.set(c, i * 1000));
  assert.deepEqual(await hasher.result, {
    digest: digestOf(joined),
    size: 3000,
  });
});

Deno.test("DigestStream rejects its result when the stream is cancelled", async () => {
  const hasher = new DigestStream();
  await hasher.readable.cancel(new Error("stop"));
  await assert.rejects(hasher.result, /stop/);
});

Deno.test("verifyStream() errors on a hash mismatch, on too many bytes and too few", async () => {
  const expected = digestOf("abc");
  await assert.rejects(
    new Response(verifyStream(new Response("abd").body!, expected)).text(),
    (e: unknown) =>
      e instanceof DigestMismatchError && e.actual === digestOf("abd"),
  );
  await assert.rejects(
    new Response(
      verifyStream(new Response("abcd").body!, expected, { size: 3 }),
    ).text(),
    (e: unknown) =>
      e instanceof DigestMismatchError &&
      /expected 3 bytes, got 4/.test(e.message),
  );
  await assert.rejects(
    new Response(
      verifyStream(new Response("ab").body!, expected, {
        size: 3,
        context: "http://x/blob",
      }),
    ).text(),
    (e: unknown) =>
      e instanceof DigestMismatchError &&
      /from http:\/\/x\/blob.*expected 3 bytes, got 2/.test(e.message),
  );
  assert.throws(
    () => verifyStream(new Response("").body!, "nope"),
    DigestError,
  );
});

Deno.test({
  name: "DigestStream matches openssl dgst -sha256 on a 64 MiB file, streamed",
  ignore: requirePeer("openssl").ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/blob`;
      // Pseudo-random content so that a wrong hash cannot match by accident.
      const file = await Deno.open(path, { write: true, create: true });
      const chunk = new Uint8Array(1 << 20);
      let x = 12345;
      for (let i = 0; i < 64; i++) {
        for (let j = 0; j < chunk.length; j += 4) {
          x = (x * 1103515245 + 12345) >>> 0;
          chunk[j] = x & 0xff;
          chunk[j + 1] = (x >> 8) & 0xff;
          chunk[j + 2] = (x >> 16) & 0xff;
          chunk[j + 3] = x >>> 24;
        }
        await file.write(chunk);
      }
      file.close();

      const hasher = new DigestStream();
      let maxChunk = 0;
      await (await Deno.open(path)).readable.pipeThrough(hasher).pipeTo(
        new WritableStream({
          write(c) {
            maxChunk = Math.max(maxChunk, c.byteLength);
          },
        }),
      );
      const { digest, size } = await hasher.result;
      const out = await new Deno.Command("openssl", {
        args: ["dgst", "-sha256", "-r", path],
      })
        .output();
      assert.equal(out.code, 0);
      const expected = new TextDecoder().decode(out.stdout).split(" ")[0];
      assert.equal(digest, `sha256:${expected}`);
      assert.equal(size, 64 << 20);
      assert.ok(maxChunk <= 1 << 20, `chunks stay small (${maxChunk} bytes)`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// A digest that shares all but its last hex character with the real one: a check that compares
// only a prefix of the digest (or of its hex) lets these through.
function nearDigest(digest: string, position = digest.length - 1): string {
  const other = digest[position] === "0" ? "1" : "0";
  return digest.slice(0, position) + other + digest.slice(position + 1);
}

const CONTENT = "the bytes of a blob, long enough to span a few chunks\n"
  .repeat(40);
const RIGHT = digestOf(CONTENT);

/** Expected digests the bytes of CONTENT must be refused under, and how. */
function wrongDigests(): [
  label: string,
  expected: string,
  error: ErrorClass,
][] {
  const hex = RIGHT.slice("sha256:".length);
  return [
    ["the last hex character differs", nearDigest(RIGHT), DigestMismatchError],
    [
      "the last two hex characters differ",
      nearDigest(nearDigest(RIGHT), RIGHT.length - 2),
      DigestMismatchError,
    ],
    [
      "only the middle character differs",
      nearDigest(RIGHT, 7 + 32),
      DigestMismatchError,
    ],
    [
      "the first hex character differs",
      nearDigest(RIGHT, 7),
      DigestMismatchError,
    ],
    // The right hex twice as sha512: a check of the hex's first 64 characters would pass it.
    ["sha512 over the sha256 hex", `sha512:${hex}${hex}`, DigestMismatchError],
    ["uppercase hex", `sha256:${hex.toUpperCase()}`, DigestError],
    ["trailing garbage", `${RIGHT}x`, DigestError],
    ["a trailing newline", `${RIGHT}\n`, DigestError],
    ["a trailing hex character", `${RIGHT}0`, DigestError],
    ["another algorithm's prefix", `sha512:${hex}`, DigestError],
    ["an uppercase algorithm", `SHA256:${hex}`, DigestError],
    ["an unknown algorithm", `sha384:${hex}`, DigestError],
  ];
}

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

/** CONTENT as a stream of three chunks. */
function contentStream(): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(CONTENT);
  const third = Math.ceil(bytes.byteLength / 3);
  return ReadableStream.from([
    bytes.subarray(0, third),
    bytes.subarray(third, 2 * third),
    bytes.subarray(2 * third),
  ]);
}

const SIZE = new TextEncoder().encode(CONTENT).byteLength;

/** Reads a stream to the end through a BYOB reader when it is a byte stream. */
async function readAll(stream: ReadableStream<Uint8Array>): Promise<number> {
  let total = 0;
  try {
    const reader = stream.getReader({ mode: "byob" });
    let buffer = new ArrayBuffer(100);
    for (;;) {
      const { value, done } = await reader.read(new Uint8Array(buffer));
      if (done) return total;
      total += value.byteLength;
      buffer = value.buffer;
    }
  } catch (error) {
    if (!(error instanceof TypeError) || total > 0) throw error;
  }
  return (await new Response(stream).arrayBuffer()).byteLength;
}

/** Every way this module checks bytes against a digest (and size), each read to the end. */
const VERIFIERS: [
  string,
  (expected: string, size?: number) => Promise<number>,
][] = [
  [
    "verifyStream() read by a default reader",
    async (expected, size) =>
      (await new Response(verifyStream(contentStream(), expected, { size }))
        .arrayBuffer()).byteLength,
  ],
  [
    "verifyStream() read by a BYOB reader",
    (expected, size) =>
      readAll(verifyStream(contentStream(), expected, { size })),
  ],
  [
    // What a copy reads: a store's verified stream, opened on the first read.
    "openOnRead() of verifyStream()",
    (expected, size) =>
      readAll(
        openOnRead(() =>
          Promise.resolve(verifyStream(contentStream(), expected, { size }))
        ),
      ),
  ],
  [
    // The source checks itself, but against the real digest: the outer check still refuses.
    "verifyStream() of a source verified for the real digest",
    (expected, size) =>
      readAll(
        verifyStream(verifyStream(contentStream(), RIGHT), expected, { size }),
      ),
  ],
];

for (const [path, verify] of VERIFIERS) {
  Deno.test(`${path} passes the right digest and size`, async () => {
    assert.equal(await verify(RIGHT, SIZE), SIZE);
    assert.equal(await verify(RIGHT), SIZE);
    assert.equal(
      await verify(digestOf(CONTENT, "sha512"), SIZE),
      SIZE,
      "sha512 works too",
    );
  });

  Deno.test(`${path} refuses a digest that is not exactly the bytes' own`, async () => {
    for (const [label, expected, error] of wrongDigests()) {
      await assert.rejects(
        (async () => await verify(expected, SIZE))(),
        (e: unknown) => {
          assert.ok(
            e instanceof error,
            `${label}: ${expected} was refused with ${e}, not a ${error.name}`,
          );
          return true;
        },
        `${label}: the bytes passed as ${JSON.stringify(expected)}`,
      );
    }
  });

  Deno.test(`${path} refuses the right bytes when the declared size differs`, async () => {
    for (const size of [SIZE + 1, SIZE + (1 << 20), SIZE - 1, 0, 1]) {
      await assert.rejects(
        verify(RIGHT, size),
        (e: unknown) => {
          assert.ok(
            e instanceof DigestMismatchError,
            `declared ${size} for ${SIZE} bytes: ${e}`,
          );
          assert.equal(e.expectedSize, size);
          assert.match(e.message, new RegExp(`expected ${size} bytes, got `));
          return true;
        },
        `declared ${size} for ${SIZE} right bytes: they passed`,
      );
    }
  });
}

Deno.test("verifyStream() refuses an empty stream declared longer, and one byte declared empty", async () => {
  const empty = digestOf("");
  await assert.rejects(
    new Response(verifyStream(new Response("").body!, empty, { size: 1 }))
      .arrayBuffer(),
    DigestMismatchError,
  );
  await assert.rejects(
    new Response(
      verifyStream(new Response("x").body!, digestOf("x"), { size: 0 }),
    ).arrayBuffer(),
    DigestMismatchError,
  );
});
