import assert from "node:assert/strict";
import {
  openLayout,
  REF_NAME_ANNOTATION,
} from "../../src/store/layout_store.ts";
import {
  DigestError,
  DigestMismatchError,
  digestOf,
  verifyStream,
} from "../../src/oci/digest.ts";
import { openOnRead } from "../../src/io/bytes.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { ManifestError } from "../../src/oci/parse_manifest.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { copyBlobs } from "../../src/image/copy.ts";
import { layoutStore } from "../../src/store/layout_store.ts";
import {
  bytesSource,
  type Transport,
} from "../../src/transport/request_body.ts";
import { assertPeer, requirePeer } from "../../peers/available.ts";

async function withLayout(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listBlobs(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(`${dir}/blobs/sha256`)) {
    names.push(entry.name);
  }
  return names.sort();
}

Deno.test("openLayout() creates oci-layout and an empty index, and refuses another version", async () => {
  await withLayout(async (dir) => {
    await openLayout(`${dir}/cache`);
    assert.deepEqual(
      JSON.parse(await Deno.readTextFile(`${dir}/cache/oci-layout`)),
      { imageLayoutVersion: "1.0.0" },
    );
    const index = JSON.parse(
      await Deno.readTextFile(`${dir}/cache/index.json`),
    );
    assert.deepEqual(index, {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [],
    });
    await openLayout(`${dir}/cache`);
    await Deno.writeTextFile(
      `${dir}/cache/oci-layout`,
      '{"imageLayoutVersion":"2.0.0"}',
    );
    await assert.rejects(
      openLayout(`${dir}/cache`),
      /imageLayoutVersion "2.0.0", expected "1.0.0"/,
    );
  });
});

Deno.test("writeBlob() leaves nothing behind when the bytes are wrong", async () => {
  await withLayout(async (dir) => {
    const layout = await openLayout(dir);
    await assert.rejects(
      layout.writeBlob(digestOf("right"), bytesSource("wrong").open()),
      DigestMismatchError,
    );
    await assert.rejects(
      layout.writeBlob(digestOf("right"), bytesSource("right").open(), {
        size: 4,
      }),
      /expected 4 bytes, got 5/,
    );
    assert.deepEqual(await listBlobs(dir), []);
    assert.equal(await layout.hasBlob(digestOf("right")), false);
  });
});

Deno.test("writeBlob() survives concurrent writers of the same blob", async () => {
  await withLayout(async (dir) => {
    const layout = await openLayout(dir);
    const bytes = new Uint8Array(2 << 20).map((_, i) => (i * 31) % 256);
    const digest = digestOf(bytes);
    await Promise.all(
      Array.from(
        { length: 8 },
        () =>
          layout.writeBlob(digest, bytesSource(bytes).open(), {
            size: bytes.byteLength,
          }),
      ),
    );
    assert.deepEqual(
      await listBlobs(dir),
      [digest.slice(7)],
      "one blob, no temporary files",
    );
    assert.equal(
      digestOf(await Deno.readFile(layout.blobPath(digest))),
      digest,
    );
    assert.ok(
      await layout.hasBlob(digest, { size: bytes.byteLength, verify: true }),
    );
  });
});

Deno.test("tag() writes index.json entries with ref.name, replaces by name, and serialises updates", async () => {
  await withLayout(async (dir) => {
    const layout = await openLayout(dir);
    const descriptor = (text: string) => ({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: digestOf(text),
      size: text.length,
    });
    await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => layout.tag(descriptor(`m${i}`), `t${i}`),
      ),
    );
    const index = await layout.readIndex();
    assert.equal(index.manifests.length, 20, "no update was lost");
    await layout.tag(descriptor("new"), "t3");
    assert.equal((await layout.tagged("t3"))?.digest, digestOf("new"));
    const entries = (await layout.readIndex()).manifests.filter((m) =>
      m.annotations?.[REF_NAME_ANNOTATION] === "t3"
    );
    assert.equal(entries.length, 1);
    assert.equal(await layout.tagged("missing"), undefined);
    assert.deepEqual(
      await layout.tagged("t3"),
      descriptor("new"),
      "the name annotation is not part of the descriptor",
    );
    const leftovers = [];
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.includes(".tmp-")) leftovers.push(entry.name);
    }
    assert.deepEqual(leftovers, []);
  });
});

Deno.test("readIndex() names the file when index.json is not JSON", async () => {
  await withLayout(async (dir) => {
    const layout = await openLayout(dir);
    await Deno.writeTextFile(`${dir}/index.json`, "{broken");
    await assert.rejects(
      layout.readIndex(),
      ManifestError,
      "index.json: the manifest is not valid JSON",
    );
  });
});

Deno.test("readIndex() checks index.json with parseManifest: a malformed entry is refused, a missing mediaType is not", async () => {
  await withLayout(async (dir) => {
    const layout = await openLayout(dir);
    const entry = {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: `sha256:${"a".repeat(64)}`,
      size: 2,
    };
    await Deno.writeTextFile(
      `${dir}/index.json`,
      JSON.stringify({ schemaVersion: 2, manifests: [{ ...entry, size: -1 }] }),
    );
    await assert.rejects(
      layout.readIndex(),
      ManifestError,
      "index.json: the index is malformed: manifests[0].size is -1",
    );
    await Deno.writeTextFile(
      `${dir}/index.json`,
      JSON.stringify({ schemaVersion: 2, manifests: [entry] }),
    );
    assert.deepEqual((await layout.readIndex()).manifests, [entry]);
  });
});

Deno.test("openLayout removes what a killed writer left and keeps what a live writer holds", async () => {
  const { createTemporary } = await import("../../src/io/files.ts");
  const dir = await Deno.makeTempDir({ prefix: "oci-layout-" });
  try {
    await openLayout(dir);
    const hex = "ab".repeat(32);
    const abandoned = `${dir}/blobs/sha256/${hex}.tmp-11-22`;
    await Deno.writeTextFile(abandoned, "half a blob");
    await Deno.writeTextFile(`${dir}/index.json.tmp-33-44`, "{");
    const live = await createTemporary(
      `${dir}/blobs/sha256/${"cd".repeat(32)}`,
    );
    // Another process opens the layout: it must not touch the live writer's file.
    const child = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { openLayout } from ${
          JSON.stringify(
            new URL("../../src/store/layout_store.ts", import.meta.url).href,
          )
        }; await openLayout(${JSON.stringify(dir)});`,
      ],
    }).output();
    assert.equal(child.code, 0, new TextDecoder().decode(child.stderr));
    const names = [];
    for await (const entry of Deno.readDir(`${dir}/blobs/sha256`)) {
      names.push(entry.name);
    }
    assert.deepEqual(names, [live.temp.split("/").pop()]);
    await assert.rejects(
      Deno.stat(`${dir}/index.json.tmp-33-44`),
      Deno.errors.NotFound,
    );
    live.file.close();
    live.lock.close();
    // Once its writer is gone, the same file is abandoned too.
    await openLayout(dir);
    const after = [];
    for await (const entry of Deno.readDir(`${dir}/blobs/sha256`)) {
      after.push(entry.name);
    }
    assert.deepEqual(after, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// --- Every verifying path of the layout refuses bytes under a digest that is not exactly
// theirs, and the right bytes under a size that is not theirs.

const CONTENT = new TextEncoder().encode(
  "blob bytes that span more than one chunk of the stream\n".repeat(50),
);
const RIGHT = digestOf(CONTENT);

/** The digest with one hex character changed (the last by default). */
function nearDigest(digest: string, position = digest.length - 1): string {
  const other = digest[position] === "0" ? "1" : "0";
  return digest.slice(0, position) + other + digest.slice(position + 1);
}

/** Well-formed digests that are not CONTENT's: all but the last char, or the first, agree. */
const NEAR_DIGESTS = [
  nearDigest(RIGHT),
  nearDigest(nearDigest(RIGHT), RIGHT.length - 2),
  nearDigest(RIGHT, 7),
  `sha512:${RIGHT.slice(7)}${RIGHT.slice(7)}`,
];

/** Digests that are not digests at all, though they start like CONTENT's. */
const MALFORMED_DIGESTS = [
  `sha256:${RIGHT.slice(7).toUpperCase()}`,
  `${RIGHT}x`,
  `${RIGHT}0`,
  `${RIGHT}\n`,
  `sha512:${RIGHT.slice(7)}`,
  `SHA256:${RIGHT.slice(7)}`,
];

/** Sizes CONTENT does not have: it is shorter than declared, or longer. */
const WRONG_SIZES = [CONTENT.byteLength + 1, CONTENT.byteLength - 1, 0];

function chunked(bytes: Uint8Array): ReadableStream<Uint8Array> {
  const half = bytes.byteLength >> 1;
  return ReadableStream.from([bytes.subarray(0, half), bytes.subarray(half)]);
}

async function listAll(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) {
      names.push(...(await listAll(`${dir}/${entry.name}`)));
    } else names.push(`${dir}/${entry.name}`);
  }
  return names.sort();
}

/** A store that refuses must leave the layout as it was: no blob, no temporary file. */
async function assertNothingWritten(dir: string, before: string[]) {
  assert.deepEqual(await listAll(dir), before, "nothing was left behind");
}

const WRITERS: [
  string,
  (digest: string, size: number | undefined) => ReadableStream<Uint8Array>,
][] = [
  ["an unchecked stream", () => chunked(CONTENT)],
  // Checks itself, against the real digest and size: must not count for another digest or size.
  [
    "a stream verified for the real digest",
    () => verifyStream(chunked(CONTENT), RIGHT, { size: CONTENT.byteLength }),
  ],
  [
    "a stream verified for the real digest, without a size",
    () => verifyStream(chunked(CONTENT), RIGHT),
  ],
  [
    "a stream opened on read (as a copy's) over one verified for the real digest",
    () =>
      openOnRead(() =>
        Promise.resolve(
          verifyStream(chunked(CONTENT), RIGHT, { size: CONTENT.byteLength }),
        )
      ),
  ],
];

for (const [what, source] of WRITERS) {
  Deno.test(`writeBlob() of ${what} refuses a digest that is not exactly the bytes'`, async () => {
    await withLayout(async (dir) => {
      const layout = await openLayout(dir);
      const before = await listAll(dir);
      for (const digest of NEAR_DIGESTS) {
        await assert.rejects(
          layout.writeBlob(digest, source(digest, CONTENT.byteLength), {
            size: CONTENT.byteLength,
          }),
          DigestMismatchError,
          `stored under ${digest}`,
        );
        assert.equal(await layout.hasBlob(digest), false);
      }
      for (const digest of MALFORMED_DIGESTS) {
        await assert.rejects(
          layout.writeBlob(digest, source(digest, CONTENT.byteLength)),
          DigestError,
          `stored under ${JSON.stringify(digest)}`,
        );
      }
      await assertNothingWritten(dir, before);
      await layout.writeBlob(RIGHT, source(RIGHT, CONTENT.byteLength), {
        size: CONTENT.byteLength,
      });
      assert.deepEqual(await Deno.readFile(layout.blobPath(RIGHT)), CONTENT);
    });
  });

  Deno.test(`writeBlob() of ${what} refuses the right bytes under another size`, async () => {
    await withLayout(async (dir) => {
      const layout = await openLayout(dir);
      const before = await listAll(dir);
      for (const size of WRONG_SIZES) {
        await assert.rejects(
          layout.writeBlob(RIGHT, source(RIGHT, size), { size }),
          (e: unknown) => {
            assert.ok(
              e instanceof DigestMismatchError,
              `declared ${size}: ${e}`,
            );
            assert.equal(e.expectedSize, size);
            return true;
          },
          `${CONTENT.byteLength} bytes stored as ${size}`,
        );
      }
      await assertNothingWritten(dir, before);
    });
  });
}

Deno.test("hasBlob({ verify }) refuses a file under a digest that differs from its own in the last character", async () => {
  await withLayout(async (dir) => {
    const layout = await openLayout(dir);
    for (const digest of NEAR_DIGESTS) {
      await Deno.mkdir(`${layout.blobPath(digest)}/..`, { recursive: true });
      await Deno.writeFile(layout.blobPath(digest), CONTENT);
      assert.equal(
        await layout.hasBlob(digest, {
          size: CONTENT.byteLength,
          verify: true,
        }),
        false,
        `${digest} kept`,
      );
      await assert.rejects(
        Deno.stat(layout.blobPath(digest)),
        Deno.errors.NotFound,
        "the damaged copy is removed",
      );
    }
    await Deno.writeFile(layout.blobPath(RIGHT), CONTENT);
    for (const size of WRONG_SIZES) {
      assert.equal(await layout.hasBlob(RIGHT, { size }), false);
      await Deno.writeFile(layout.blobPath(RIGHT), CONTENT);
    }
    assert.ok(
      await layout.hasBlob(RIGHT, { size: CONTENT.byteLength, verify: true }),
    );
  });
});

Deno.test("a layout store's blob reads refuse a file that is not exactly the descriptor's bytes", async () => {
  await withLayout(async (dir) => {
    const layout = await openLayout(dir);
    const store = await layoutStore(layout);
    const read = (digest: string, size: number) =>
      new Response(
        // Through the promise: fetchBlob may throw at once or error the stream.
        new ReadableStream({
          async start(controller) {
            try {
              const stream = await store.fetch({
                mediaType: "application/octet-stream",
                digest,
                size,
              });
              controller.enqueue(
                new Uint8Array(await new Response(stream).arrayBuffer()),
              );
              controller.close();
            } catch (error) {
              controller.error(error);
            }
          },
        }),
      ).arrayBuffer();
    // The file's bytes are CONTENT, but it sits under a name that is not its digest.
    for (const digest of NEAR_DIGESTS) {
      await Deno.mkdir(`${layout.blobPath(digest)}/..`, { recursive: true });
      await Deno.writeFile(layout.blobPath(digest), CONTENT);
      await assert.rejects(
        read(digest, CONTENT.byteLength),
        DigestMismatchError,
        `read as ${digest}`,
      );
    }
    await Deno.writeFile(layout.blobPath(RIGHT), CONTENT);
    for (const size of WRONG_SIZES) {
      await assert.rejects(
        read(RIGHT, size),
        (e: unknown) =>
          e instanceof DigestMismatchError && e.expectedSize === size,
        `${CONTENT.byteLength} bytes read as ${size}`,
      );
    }
    assert.equal(
      (await read(RIGHT, CONTENT.byteLength)).byteLength,
      CONTENT.byteLength,
    );
  });
});

/** A registry that answers every blob GET with CONTENT, whatever digest was asked for. */
function servingContent(requests: string[]): Transport {
  return (request) => {
    requests.push(new URL(request.url).pathname);
    return Promise.resolve(
      new Response(chunked(CONTENT), {
        headers: { "content-length": String(CONTENT.byteLength) },
      }),
    );
  };
}

Deno.test("copyBlobs() into a layout refuses a registry's bytes under a digest that is not exactly theirs, keeping nothing", async () => {
  await withLayout(async (dir) => {
    const layout = await openLayout(dir);
    const before = await listAll(dir);
    const ref = parseReference("registry.test/app");
    for (const digest of NEAR_DIGESTS) {
      const requests: string[] = [];
      await assert.rejects(
        copyBlobs(
          remoteStore(ref, { transport: servingContent(requests) }),
          layout,
          [{
            mediaType: "application/octet-stream",
            digest,
            size: CONTENT.byteLength,
          }],
          { attempts: 2 },
        ),
        DigestMismatchError,
        `staged as ${digest}`,
      );
      assert.equal(requests.length, 2, "a damaged download is fetched again");
    }
    for (const size of WRONG_SIZES) {
      await assert.rejects(
        copyBlobs(
          remoteStore(ref, { transport: servingContent([]) }),
          layout,
          [{ mediaType: "application/octet-stream", digest: RIGHT, size }],
          { attempts: 1 },
        ),
        (e: unknown) =>
          e instanceof DigestMismatchError && e.expectedSize === size,
        `${CONTENT.byteLength} bytes staged as ${size}`,
      );
    }
    await assertNothingWritten(dir, before);
    await copyBlobs(
      remoteStore(ref, { transport: servingContent([]) }),
      layout,
      [{
        mediaType: "application/octet-stream",
        digest: RIGHT,
        size: CONTENT.byteLength,
      }],
    );
    assert.deepEqual(await Deno.readFile(layout.blobPath(RIGHT)), CONTENT);
  });
});

Deno.test("writeBlob({ verified }) trusts a stream that checks itself, and keeps nothing when it errors", async () => {
  await withLayout(async (dir) => {
    const layout = await openLayout(dir);
    const before = await listAll(dir);
    // Told it is verified, the layout does not hash: the stream's own check is what refuses.
    await assert.rejects(
      layout.writeBlob(
        NEAR_DIGESTS[0],
        verifyStream(chunked(CONTENT), NEAR_DIGESTS[0], {
          size: CONTENT.byteLength,
        }),
        { size: CONTENT.byteLength, verified: true },
      ),
      DigestMismatchError,
    );
    await assertNothingWritten(dir, before);
    await layout.writeBlob(
      RIGHT,
      verifyStream(chunked(CONTENT), RIGHT, { size: CONTENT.byteLength }),
      { size: CONTENT.byteLength, verified: true },
    );
    assert.deepEqual(await Deno.readFile(layout.blobPath(RIGHT)), CONTENT);
  });
});

// --- Durability. How it is checked: the writes run in a child process under
// `strace -f -y -e trace=fsync,fdatasync,rename,renameat,renameat2`, which records the system
// calls the kernel actually received, with the path behind each descriptor (-y). The test then
// checks their order: each temporary file is synced (fsync or fdatasync returned) before the
// rename that gives it its name, and the directory is synced after that rename (POSIX makes a
// new name durable only then) and before index.json names the blob. A test cannot pull the
// power, so it checks the contract the kernel offers; strace missing skips it with a message,
// except in CI (OCI_TEST_REQUIRE_PEERS=1) where it fails.

/** A system call from strace's log: its line, and the line where it returned. */
interface TracedCall {
  readonly call: string;
  readonly args: string;
  readonly start: number;
  readonly end: number;
}

/** Reads `strace -f -y -o` output: one entry per call, an unfinished one joined to its end. */
function parseStrace(log: string): TracedCall[] {
  const calls: TracedCall[] = [];
  const pending = new Map<
    string,
    { call: string; args: string; start: number }
  >();
  for (const [line, text] of log.split("\n").entries()) {
    const resumed = /^(\d+)\s+<\.\.\. (\w+) resumed>/.exec(text);
    if (resumed) {
      const key = `${resumed[1]} ${resumed[2]}`;
      const started = pending.get(key);
      if (started) calls.push({ ...started, end: line });
      pending.delete(key);
      continue;
    }
    const entry = /^(\d+)\s+(\w+)\((.*?)(?:\) += -?\d+.*| <unfinished \.\.\.>)$/
      .exec(text);
    if (!entry) continue;
    const [, pid, call, args] = entry;
    if (text.endsWith("<unfinished ...>")) {
      pending.set(`${pid} ${call}`, { call, args, start: line });
    } else if (/\) += 0/.test(text)) {
      calls.push({ call, args, start: line, end: line });
    }
  }
  return calls.sort((a, b) => a.start - b.start);
}

function syncsOf(calls: TracedCall[], path: RegExp): TracedCall[] {
  return calls.filter((c) =>
    (c.call === "fsync" || c.call === "fdatasync") &&
    path.test(/<(.*)>/.exec(c.args)?.[1] ?? "")
  );
}

/** The last rename whose target is `to`, with its source. */
function renameTo(
  calls: TracedCall[],
  to: string,
): TracedCall & { from: string } {
  const renames = calls.filter((c) => c.call.startsWith("rename"))
    .map((c) => {
      const paths = [...c.args.matchAll(/"([^"]*)"/g)].map((m) => m[1]);
      return { ...c, from: paths[0], to: paths[1] };
    })
    .filter((c) => c.to === to);
  assert.ok(renames.length > 0, `no rename to ${to} was traced`);
  return renames[renames.length - 1];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test({
  name:
    "writeBlob() and tag() sync each file before its rename and the directory after it (strace)",
  ...requirePeer("strace"),
  async fn() {
    assertPeer("strace");
    await withLayout(async (tmp) => {
      const dir = await Deno.realPath(tmp);
      const script = `${dir}/write.ts`;
      const url = (path: string) =>
        JSON.stringify(new URL(path, import.meta.url).href);
      await Deno.writeTextFile(
        script,
        `import { openLayout } from ${url("../../src/store/layout_store.ts")};
import { digestOf } from ${url("../../src/oci/digest.ts")};
const layout = await openLayout(${JSON.stringify(`${dir}/stage`)});
const bytes = new TextEncoder().encode("durable bytes\\n".repeat(10000));
const digest = digestOf(bytes);
await layout.writeBlob(digest, new Response(bytes).body!, { size: bytes.byteLength });
await layout.tag({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest, size: bytes.byteLength }, "v1");
console.log(digest);
`,
      );
      const log = `${dir}/strace.log`;
      const child = await new Deno.Command("strace", {
        args: [
          "-f",
          "-y",
          "-qq",
          "-e",
          "trace=fsync,fdatasync,rename,renameat,renameat2",
          "-o",
          log,
          Deno.execPath(),
          "run",
          "--quiet",
          "--no-lock",
          `--allow-read=${dir}`,
          `--allow-write=${dir}`,
          script,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(
        child.code,
        0,
        `strace or the writer failed: ${
          new TextDecoder().decode(child.stderr)
        }`,
      );
      const digest = new TextDecoder().decode(child.stdout).trim();
      const stage = `${dir}/stage`;
      const blob = `${stage}/blobs/sha256/${digest.slice(7)}`;
      const calls = parseStrace(await Deno.readTextFile(log));

      const blobRename = renameTo(calls, blob);
      assert.match(blobRename.from, /\.tmp-\d+-\d+$/);
      const blobSyncs = syncsOf(
        calls,
        new RegExp(`^${escapeRegExp(blobRename.from)}$`),
      );
      assert.ok(
        blobSyncs.some((s) => s.end < blobRename.start),
        `the blob's temporary file is synced before its rename: ${
          JSON.stringify(blobSyncs)
        }`,
      );

      const indexRename = renameTo(calls, `${stage}/index.json`);
      const indexSyncs = syncsOf(
        calls,
        new RegExp(`^${escapeRegExp(indexRename.from)}$`),
      );
      assert.ok(
        indexSyncs.some((s) => s.end < indexRename.start),
        "index.json's temporary file is synced before its rename",
      );

      const blobDirSyncs = syncsOf(
        calls,
        new RegExp(`^${escapeRegExp(`${stage}/blobs/sha256`)}$`),
      );
      assert.ok(
        blobDirSyncs.some((s) =>
          s.start > blobRename.end && s.end < indexRename.start
        ),
        "blobs/sha256 is synced after the blob's rename and before index.json names it",
      );
      const rootSyncs = syncsOf(calls, new RegExp(`^${escapeRegExp(stage)}$`));
      assert.ok(
        rootSyncs.some((s) => s.start > indexRename.end),
        "the layout's directory is synced after index.json's rename",
      );
    });
  },
});
