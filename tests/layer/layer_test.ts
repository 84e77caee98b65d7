import assert from "node:assert/strict";
import { concatBytes } from "../../src/io/bytes.ts";
import { gunzipSync, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { createLayer } from "../../src/layer/create_layer.ts";
import {
  extractLayer,
  LayerFormatError,
  UnsafeEntryError,
} from "../../src/layer/extract_layer.ts";
import { createTarPacker, type TarHeader } from "../../src/layer/tar.ts";
import { compress } from "../../src/layer/compression.ts";
import { openLayout } from "../../src/store/layout_store.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { requirePeer } from "../../peers/available.ts";
import {
  gzip,
  layerStream,
  makeSandbox,
  type RawEntry,
  rawTar as rawArchive,
  ustarBlock,
} from "../support/layers.ts";
import { assertTyped } from "../support/bad_input.ts";
import { pseudoRandomBytes } from "../support/images.ts";
import { FALLBACKS, withWorker } from "../support/workers.ts";

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "oci-layer-" });
}

/** A tree with what layers must carry: long names, symlinks, hardlinks, empty dirs, modes. */
async function makeTree(root: string): Promise<void> {
  await Deno.mkdir(`${root}/bin`, { recursive: true });
  await Deno.writeTextFile(`${root}/bin/tool`, "#!/bin/sh\necho tool\n");
  await Deno.chmod(`${root}/bin/tool`, 0o755);
  await Deno.writeTextFile(`${root}/README`, "read me\n");
  await Deno.chmod(`${root}/README`, 0o640);
  await Deno.mkdir(`${root}/empty/dir`, { recursive: true });
  const long = `${root}/deep/${"n".repeat(120)}/${"m".repeat(120)}`;
  await Deno.mkdir(long, { recursive: true });
  await Deno.writeTextFile(`${long}/${"f".repeat(100)}.txt`, "long name\n");
  await Deno.symlink("bin/tool", `${root}/tool-link`);
  await Deno.symlink("/usr/bin/env", `${root}/absolute-link`);
  await Deno.symlink("../README", `${root}/bin/readme-link`);
  await Deno.link(`${root}/README`, `${root}/README.hard`);
}

/** Everything about a tree that a round trip must keep. */
async function describeTree(root: string, relative = ""): Promise<string[]> {
  const lines: string[] = [];
  const names: string[] = [];
  for await (const entry of Deno.readDir(`${root}/${relative}`)) {
    names.push(entry.name);
  }
  for (const name of names.sort()) {
    const path = relative ? `${relative}/${name}` : name;
    const info = await Deno.lstat(`${root}/${path}`);
    const mode = (info.mode! & 0o7777).toString(8);
    if (info.isSymlink) {
      lines.push(`l ${path} -> ${await Deno.readLink(`${root}/${path}`)}`);
    } else if (info.isDirectory) {
      lines.push(`d ${path} ${mode}`);
      lines.push(...await describeTree(root, path));
    } else {
      lines.push(
        `f ${path} ${mode} ${info.size} ${
          digestOf(await Deno.readFile(`${root}/${path}`))
        } links=${info.nlink}`,
      );
    }
  }
  return lines;
}

Deno.test("createLayer() is reproducible and its digests are the file's and the tar's", async () => {
  const tree = await tempDir();
  const stageDir = await tempDir();
  try {
    await makeTree(tree);
    const stage = await openLayout(stageDir);
    const first = await createLayer(tree, stage);
    const second = await createLayer(tree, stage);
    assert.equal(second.compressedDigest, first.compressedDigest);
    assert.equal(second.uncompressedDigest, first.uncompressedDigest);
    const gz = await Deno.readFile(first.path);
    assert.equal(digestOf(gz), first.compressedDigest);
    assert.equal(gz.byteLength, first.size);
    assert.equal(
      digestOf(new Uint8Array(gunzipSync(gz))),
      first.uncompressedDigest,
    );
    assert.equal(first.path, stage.blobPath(first.compressedDigest));
    // A touched mtime does not change the layer; content does.
    await Deno.utime(`${tree}/README`, 12345, 12345);
    assert.equal(
      (await createLayer(tree, stage)).compressedDigest,
      first.compressedDigest,
    );
    await Deno.writeTextFile(`${tree}/README`, "changed\n");
    assert.notEqual(
      (await createLayer(tree, stage)).uncompressedDigest,
      first.uncompressedDigest,
    );
    const leftovers = [];
    for await (const e of Deno.readDir(`${stageDir}/blobs/sha256`)) {
      if (e.name.startsWith(".")) leftovers.push(e.name);
    }
    assert.deepEqual(leftovers, []);
  } finally {
    await Deno.remove(tree, { recursive: true });
    await Deno.remove(stageDir, { recursive: true });
  }
});

Deno.test({
  name:
    "createLayer() writes a tar GNU tar reads: sorted, mtime 0, uid/gid 0, no names",
  ...requirePeer("tar"),
  async fn() {
    const tree = await tempDir();
    const stageDir = await tempDir();
    try {
      await makeTree(tree);
      const layer = await createLayer(tree, await openLayout(stageDir), {
        mtime: 0,
      });
      const out = await new Deno.Command("tar", {
        args: ["--numeric-owner", "-tvzf", layer.path],
        stdout: "piped",
      }).output();
      assert.equal(out.code, 0);
      const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
      for (const line of lines) {
        assert.match(line, /^\S+ 0\/0 +\d+ 1970-01-01 00:00 /, line);
      }
      const names = lines.map((l) =>
        l.split(/ 00:00 /)[1].split(" -> ")[0].split(" link to ")[0]
      );
      const sorted = [...names].sort((a, b) =>
        a.replace(/\/$/, "") < b.replace(/\/$/, "") ? -1 : 1
      );
      assert.deepEqual(names, sorted);
      assert.ok(
        lines.some((l) =>
          l.startsWith("h") && l.includes("README.hard link to README")
        ),
      );
      // GNU tar extracts it to the same tree.
      const gnu = await tempDir();
      await new Deno.Command("tar", { args: ["-xzf", layer.path, "-C", gnu] })
        .output();
      assert.deepEqual(await describeTree(gnu), await describeTree(tree));
      await Deno.remove(gnu, { recursive: true });
    } finally {
      await Deno.remove(tree, { recursive: true });
      await Deno.remove(stageDir, { recursive: true });
    }
  },
});

Deno.test("createLayer() compresses with zstd or not at all: the same tar, both digests right, media types said", async () => {
  const tree = await tempDir();
  const stageDir = await tempDir();
  try {
    await makeTree(tree);
    const stage = await openLayout(stageDir);
    const gz = await createLayer(tree, stage);
    assert.equal(gz.compression, "gzip");
    assert.equal(gz.mediaType, "application/vnd.oci.image.layer.v1.tar+gzip");
    const zst = await createLayer(tree, stage, { compression: "zstd" });
    const again = await createLayer(tree, stage, { compression: "zstd" });
    assert.equal(again.compressedDigest, zst.compressedDigest);
    assert.equal(zst.compression, "zstd");
    assert.equal(zst.mediaType, "application/vnd.oci.image.layer.v1.tar+zstd");
    const zstBytes = await Deno.readFile(zst.path);
    assert.equal(digestOf(zstBytes), zst.compressedDigest);
    assert.equal(zstBytes.byteLength, zst.size);
    assert.equal(zst.path, stage.blobPath(zst.compressedDigest));
    const tar = new Uint8Array(zstdDecompressSync(zstBytes));
    assert.equal(digestOf(tar), zst.uncompressedDigest);
    assert.equal(zst.uncompressedDigest, gz.uncompressedDigest);
    const none = await createLayer(tree, stage, { compression: "none" });
    assert.equal(none.mediaType, "application/vnd.oci.image.layer.v1.tar");
    assert.equal(none.compressedDigest, gz.uncompressedDigest);
    assert.equal(none.uncompressedDigest, gz.uncompressedDigest);
    assert.deepEqual(await Deno.readFile(none.path), tar);
    for (const layer of [zst, none]) {
      const target = await tempDir();
      const result = await extractLayer(
        (await Deno.open(layer.path)).readable,
        target,
        { compression: layer.compression },
      );
      assert.equal(result.uncompressedDigest, layer.uncompressedDigest);
      assert.deepEqual(await describeTree(target), await describeTree(tree));
      await Deno.remove(target, { recursive: true });
    }
  } finally {
    await Deno.remove(tree, { recursive: true });
    await Deno.remove(stageDir, { recursive: true });
  }
});

Deno.test({
  name:
    "zstd layers go both ways with GNU tar: `tar --zstd -xf` reads ours, we read `tar --zstd -cf`'s",
  ...requirePeer("tar", "zstd"),
  async fn() {
    const tree = await tempDir();
    const stageDir = await tempDir();
    const work = await tempDir();
    try {
      await makeTree(tree);
      const layer = await createLayer(tree, await openLayout(stageDir), {
        compression: "zstd",
      });
      await Deno.mkdir(`${work}/gnu`);
      const gnu = await new Deno.Command("tar", {
        args: ["--zstd", "-xf", layer.path, "-C", `${work}/gnu`],
        stderr: "piped",
      }).output();
      assert.equal(gnu.code, 0, new TextDecoder().decode(gnu.stderr));
      assert.deepEqual(
        await describeTree(`${work}/gnu`),
        await describeTree(tree),
      );
      const made = await new Deno.Command("tar", {
        args: ["--zstd", "-cf", `${work}/gnu.tar.zst`, "-C", tree, "."],
        stderr: "piped",
      }).output();
      assert.equal(made.code, 0, new TextDecoder().decode(made.stderr));
      const result = await extractLayer(
        (await Deno.open(`${work}/gnu.tar.zst`)).readable,
        `${work}/ours`,
        { compression: "zstd" },
      );
      assert.equal(
        result.uncompressedDigest,
        digestOf(
          zstdDecompressSync(await Deno.readFile(`${work}/gnu.tar.zst`)),
        ),
      );
      assert.deepEqual(
        await describeTree(`${work}/ours`),
        await describeTree(tree),
      );
    } finally {
      for (const dir of [tree, stageDir, work]) {
        await Deno.remove(dir, { recursive: true });
      }
    }
  },
});

Deno.test("extractLayer() refuses a cut or damaged zstd layer with a LayerFormatError, leaving nothing half-written", async () => {
  const tar = await rawTar([{
    header: { name: "big", size: 0 },
    body: "x".repeat(100_000) + "y".repeat(100_000),
  }], false);
  const zst = zstdCompressSync(tar);
  const cases: [string, Uint8Array<ArrayBuffer>, RegExp][] = [
    ["cut", zst.slice(0, zst.byteLength - 3), /truncated/],
    ["trailing", new Uint8Array([...zst, 7, 7, 7, 7]), /no zstd frame/],
    ["gzip", gzip(tar), /not zstd/],
  ];
  for (const [what, bytes, reason] of cases) {
    const target = await tempDir();
    try {
      await assert.rejects(
        extractLayer(new Response(bytes).body!, target, {
          compression: "zstd",
        }),
        (error: unknown) => {
          assert.ok(error instanceof LayerFormatError, `${what}: ${error}`);
          assert.match(error.message, reason, what);
          return true;
        },
      );
      const left: string[] = [];
      for await (const e of Deno.readDir(target)) left.push(e.name);
      assert.deepEqual(left, [], what);
    } finally {
      await Deno.remove(target, { recursive: true });
    }
  }
});

Deno.test("extractLayer() gives a multi-frame zstd layer's tar digest from its Worker or, when none can start, from this thread; a cut one gives none", async () => {
  const tree = await tempDir();
  const stageDir = await tempDir();
  try {
    // Over 4 MiB of tar: several of createLayer's 2 MiB zstd frames.
    await Deno.writeFile(
      `${tree}/random`,
      pseudoRandomBytes(3 * 1024 * 1024, 4),
    );
    await Deno.writeTextFile(`${tree}/text`, "layer ".repeat(400_000));
    const stage = await openLayout(stageDir);
    const layer = await createLayer(tree, stage, { compression: "zstd" });
    const zst = await Deno.readFile(layer.path);
    const tar = new Uint8Array(zstdDecompressSync(zst));
    assert.equal(digestOf(tar), layer.uncompressedDigest);
    const cut = zst.slice(0, zst.byteLength - 100);
    for (
      const [how, worker] of [
        ["Worker", globalThis.Worker] as const,
        ...Object.entries(FALLBACKS),
      ]
    ) {
      await withWorker(worker, async () => {
        const target = await tempDir();
        try {
          const result = await extractLayer(new Response(zst).body!, target, {
            compression: "zstd",
          });
          assert.equal(
            result.uncompressedDigest,
            layer.uncompressedDigest,
            how,
          );
          assert.deepEqual(
            await describeTree(target),
            await describeTree(tree),
            how,
          );
          await Deno.remove(target, { recursive: true });
          await Deno.mkdir(target);
          await assert.rejects(
            extractLayer(new Response(cut).body!, target, {
              compression: "zstd",
            }),
            (error: unknown) => {
              assert.ok(error instanceof LayerFormatError, `${how}: ${error}`);
              assert.match(error.message, /truncated/, how);
              return true;
            },
          );
        } finally {
          await Deno.remove(target, { recursive: true });
        }
      });
    }
  } finally {
    await Deno.remove(tree, { recursive: true });
    await Deno.remove(stageDir, { recursive: true });
  }
});

Deno.test("createLayer() adds extra files under a prefix, and SOURCE_DATE_EPOCH sets the mtime", async () => {
  const tree = await tempDir();
  const stageDir = await tempDir();
  try {
    await Deno.writeTextFile(`${tree}/a`, "a");
    const stage = await openLayout(stageDir);
    Deno.env.set("SOURCE_DATE_EPOCH", "1700000000");
    let layer;
    try {
      layer = await createLayer(tree, stage, {
        prefix: "opt/app",
        extraFiles: { ".spack/binary_distribution": "buildinfo: {}\n" },
      });
    } finally {
      Deno.env.delete("SOURCE_DATE_EPOCH");
    }
    const target = await tempDir();
    await extractLayer((await Deno.open(layer.path)).readable, target);
    assert.equal(await Deno.readTextFile(`${target}/opt/app/a`), "a");
    assert.equal(
      await Deno.readTextFile(`${target}/opt/app/.spack/binary_distribution`),
      "buildinfo: {}\n",
    );
    assert.equal(
      (await Deno.stat(`${target}/opt/app/a`)).mtime?.getTime(),
      1700000000 * 1000,
    );
    await Deno.remove(target, { recursive: true });
  } finally {
    await Deno.remove(tree, { recursive: true });
    await Deno.remove(stageDir, { recursive: true });
  }
});

Deno.test("createLayer() packs a single file, and skips sockets with a warning", async () => {
  const tree = await tempDir();
  const stageDir = await tempDir();
  try {
    await Deno.writeTextFile(`${tree}/only.txt`, "just me");
    const stage = await openLayout(stageDir);
    const single = await createLayer(`${tree}/only.txt`, stage);
    const target = await tempDir();
    await extractLayer((await Deno.open(single.path)).readable, target);
    assert.deepEqual(await describeTree(target), [
      `f only.txt 644 7 ${digestOf("just me")} links=1`,
    ]);
    await Deno.remove(target, { recursive: true });
    // A child binds the socket (and leaves its file): this test needs no net permission.
    const bound = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `Deno.listen({ transport: "unix", path: ${
          JSON.stringify(`${tree}/socket`)
        } }); Deno.exit(0);`,
      ],
    }).output();
    assert.equal(bound.code, 0, new TextDecoder().decode(bound.stderr));
    assert.ok((await Deno.lstat(`${tree}/socket`)).isSocket);
    const warnings: string[] = [];
    await createLayer(tree, stage, { onWarning: (m) => warnings.push(m) });
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0],
      /Skipping .*socket: sockets, devices and fifos cannot go in a layer/,
    );
  } finally {
    await Deno.remove(tree, { recursive: true });
    await Deno.remove(stageDir, { recursive: true });
  }
});

Deno.test("extractLayer() restores content, modes, symlinks and hardlinks, and checks the tar digest", async () => {
  const tree = await tempDir();
  const stageDir = await tempDir();
  const target = await tempDir();
  try {
    await makeTree(tree);
    const layer = await createLayer(tree, await openLayout(stageDir));
    const result = await extractLayer(
      (await Deno.open(layer.path)).readable,
      target,
    );
    assert.equal(result.uncompressedDigest, layer.uncompressedDigest);
    assert.deepEqual(await describeTree(target), await describeTree(tree));
    assert.equal(
      (await Deno.lstat(`${target}/README.hard`)).ino,
      (await Deno.lstat(`${target}/README`)).ino,
    );
  } finally {
    for (const dir of [tree, stageDir, target]) {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test({
  name:
    "extractLayer() reads multi-member gzip (gzip and pigz members joined with cat, pigz --independent) to the same tree and uncompressedDigest, and refuses it cut or damaged",
  ...requirePeer("tar", "gzip", "pigz"),
  async fn() {
    const tree = await tempDir();
    const work = await tempDir();
    try {
      await makeTree(tree);
      await Deno.writeFile(`${tree}/noise`, pseudoRandomBytes(300_000, 5));
      const tar = await new Deno.Command("tar", {
        args: ["-cf", `${work}/layer.tar`, "-C", tree, "."],
      }).output();
      assert.ok(tar.success, new TextDecoder().decode(tar.stderr));
      // The tar cut in three, each piece compressed on its own by a different tool, then joined.
      const bytes = await Deno.readFile(`${work}/layer.tar`);
      const third = Math.floor(bytes.byteLength / 3);
      const pieces = [
        bytes.subarray(0, third),
        bytes.subarray(third, 2 * third),
        bytes.subarray(2 * third),
      ];
      const tools = [["gzip", "-c"], ["pigz", "-c"], ["gzip", "-1", "-c"]];
      for (const [i, piece] of pieces.entries()) {
        await Deno.writeFile(`${work}/p${i}`, piece);
        const [tool, ...args] = tools[i];
        const out = await new Deno.Command("sh", {
          args: [
            "-c",
            `${tool} ${args.join(" ")} ${work}/p${i} > ${work}/p${i}.gz`,
          ],
        }).output();
        assert.ok(out.success, new TextDecoder().decode(out.stderr));
      }
      const joined = await new Deno.Command("sh", {
        args: [
          "-c",
          `cat ${work}/p0.gz ${work}/p1.gz ${work}/p2.gz > ${work}/joined.gz && pigz --independent --blocksize 32 -c ${work}/layer.tar > ${work}/independent.gz && gzip -c ${work}/layer.tar > ${work}/single.gz`,
        ],
      }).output();
      assert.ok(joined.success, new TextDecoder().decode(joined.stderr));
      const expected = digestOf(bytes);
      for (const name of ["single", "joined", "independent"]) {
        const target = `${work}/out-${name}`;
        const result = await extractLayer(
          (await Deno.open(`${work}/${name}.gz`)).readable,
          target,
        );
        assert.equal(result.uncompressedDigest, expected, name);
        assert.deepEqual(
          await describeTree(target),
          await describeTree(tree),
          name,
        );
      }
      const members = await Deno.readFile(`${work}/joined.gz`);
      const first = (await Deno.stat(`${work}/p0.gz`)).size;
      const damaged = members.slice();
      damaged[first + 100] ^= 0xff;
      for (
        const [what, layer] of [
          ["cut inside its second member", members.subarray(0, first + 1000)],
          ["damaged in its second member", damaged],
          ["followed by junk", new Uint8Array([...members, 1, 2, 3])],
        ] as const
      ) {
        await using sandbox = await makeSandbox();
        await assert.rejects(
          extractLayer(new Response(layer).body!, sandbox.target),
          (error: unknown) => {
            assert.ok(error instanceof LayerFormatError, `${what}: ${error}`);
            assert.match(error.message, /gzip/, what);
            return true;
          },
        );
        assert.deepEqual(await sandbox.missing(), [], what);
      }
    } finally {
      for (const dir of [tree, work]) {
        await Deno.remove(dir, { recursive: true });
      }
    }
  },
});

/** A raw tar (optionally gzip) made of the given entries, for hostile archives. */
async function rawTar(
  entries: { header: TarHeader; body?: string }[],
  gzip = true,
): Promise<Uint8Array<ArrayBuffer>> {
  const { readable, controller } = createTarPacker();
  const bytes = new Response(
    gzip
      ? readable.pipeThrough(
        new CompressionStream("gzip") as unknown as TransformStream<
          Uint8Array,
          Uint8Array
        >,
      )
      : readable,
  ).arrayBuffer();
  for (const { header, body } of entries) {
    const data = new TextEncoder().encode(body ?? "");
    const writable = controller.add({
      mtime: new Date(0),
      ...header,
      size: data.byteLength,
    });
    const writer = writable.getWriter();
    if (data.byteLength) await writer.write(data);
    await writer.close();
  }
  controller.finalize();
  return new Uint8Array(await bytes);
}

const HOSTILE: [string, { header: TarHeader; body?: string }[], RegExp][] = [
  [
    "a ../ path",
    [{ header: { name: "../x", size: 0 }, body: "evil" }],
    /"\.\.\/x": "\.\." would leave/,
  ],
  ["a nested ../ path", [{
    header: { name: "a/../../x", size: 0 },
    body: "evil",
  }], /would leave the target/],
  [
    "an absolute path",
    [{ header: { name: "/etc/x", size: 0 }, body: "evil" }],
    /"\/etc\/x": absolute paths/,
  ],
  [
    "a file written through a symlink to /",
    [
      { header: { name: "link", type: "symlink", linkname: "/", size: 0 } },
      { header: { name: "link/file", size: 0 }, body: "evil" },
    ],
    /"link\/file": its parent "link" is a symlink/,
  ],
  [
    "a file written through a relative symlink",
    [
      { header: { name: "up", type: "symlink", linkname: ".", size: 0 } },
      { header: { name: "up/file", size: 0 }, body: "evil" },
    ],
    /parent "up" is a symlink/,
  ],
  [
    "a symlink that climbs out",
    [{
      header: {
        name: "a/escape",
        type: "symlink",
        linkname: "../../outside",
        size: 0,
      },
    }],
    /symlink target "\.\.\/\.\.\/outside" leaves/,
  ],
  [
    "a hardlink to an outside path",
    [{
      header: {
        name: "hard",
        type: "link",
        linkname: "../outside/secret",
        size: 0,
      },
    }],
    /"\.\.\/outside\/secret": "\.\." would leave/,
  ],
  [
    "a hardlink to an absolute path",
    [{
      header: { name: "hard", type: "link", linkname: "/etc/passwd", size: 0 },
    }],
    /absolute paths are not allowed/,
  ],
  [
    "a hardlink through a symlink",
    [
      { header: { name: "l", type: "symlink", linkname: "/etc", size: 0 } },
      { header: { name: "hard", type: "link", linkname: "l/passwd", size: 0 } },
    ],
    /hardlink target "l\/passwd" goes through a symlink/,
  ],
];

for (const [what, entries, message] of HOSTILE) {
  Deno.test(`extractLayer() refuses ${what} and writes nothing outside`, async () => {
    const sandbox = await tempDir();
    try {
      await Deno.mkdir(`${sandbox}/outside`);
      await Deno.writeTextFile(`${sandbox}/outside/secret`, "secret");
      const target = `${sandbox}/target`;
      const bytes = await rawTar(entries);
      await assert.rejects(
        extractLayer(new Response(bytes).body!, target),
        (error: unknown) => {
          assert.ok(error instanceof UnsafeEntryError, String(error));
          assert.match(error.message, /^Cannot extract layer entry /);
          assert.match(error.message, message);
          return true;
        },
      );
      const outside: string[] = [];
      for await (const e of Deno.readDir(sandbox)) outside.push(e.name);
      assert.deepEqual(outside.sort(), ["outside", "target"]);
      const inOutside: string[] = [];
      for await (const e of Deno.readDir(`${sandbox}/outside`)) {
        inOutside.push(e.name);
      }
      assert.deepEqual(inOutside, ["secret"]);
      assert.equal(
        await Deno.readTextFile(`${sandbox}/outside/secret`),
        "secret",
      );
    } finally {
      await Deno.remove(sandbox, { recursive: true });
    }
  });
}

Deno.test("extractLayer() applies whiteouts and opaque directories in layer order", async () => {
  const target = await tempDir();
  try {
    const lower = await rawTar([
      { header: { name: "a/", type: "directory", size: 0 } },
      { header: { name: "a/b", size: 0 }, body: "b" },
      { header: { name: "a/c", size: 0 }, body: "c" },
      { header: { name: "d/", type: "directory", size: 0 } },
      { header: { name: "d/e", size: 0 }, body: "e" },
      { header: { name: "d/sub/", type: "directory", size: 0 } },
      { header: { name: "d/sub/g", size: 0 }, body: "g" },
    ]);
    const upper = await rawTar([
      { header: { name: "a/.wh.b", size: 0 } },
      { header: { name: "d/", type: "directory", size: 0 } },
      { header: { name: "d/.wh..wh..opq", size: 0 } },
      { header: { name: "d/f", size: 0 }, body: "f" },
    ]);
    await extractLayer(new Response(lower).body!, target);
    await extractLayer(new Response(upper).body!, target);
    const tree = await describeTree(target);
    assert.deepEqual(tree.map((l) => l.split(" ").slice(0, 2).join(" ")), [
      "d a",
      "f a/c",
      "d d",
      "f d/f",
    ]);
  } finally {
    await Deno.remove(target, { recursive: true });
  }
});

Deno.test("extractLayer() leaves no half-written file when the archive is cut short", async () => {
  const target = await tempDir();
  try {
    const bytes = await rawTar([{
      header: { name: "big", size: 0 },
      body: "x".repeat(100_000),
    }], false);
    const cut = bytes.slice(0, 50_000);
    await assert.rejects(
      extractLayer(new Response(cut).body!, target, { compression: "none" }),
      (error: unknown) => {
        assert.ok(error instanceof LayerFormatError, String(error));
        assert.equal(error.entry, "big");
        assert.match(error.message, /entry "big".*ends inside/);
        return true;
      },
    );
    const left: string[] = [];
    for await (const e of Deno.readDir(target)) left.push(e.name);
    assert.deepEqual(left, []);
  } finally {
    await Deno.remove(target, { recursive: true });
  }
});

Deno.test("extractLayer() refuses garbage with a clear error", async () => {
  const target = await tempDir();
  try {
    await assert.rejects(
      extractLayer(new Response(new Uint8Array(4096).fill(7)).body!, target, {
        compression: "none",
      }),
      /damaged|checksum|Invalid/i,
    );
  } finally {
    await Deno.remove(target, { recursive: true });
  }
});

/** Extracts raw layers in order into a sandboxed target (see tests/support/layers.ts). */
async function extractAll(
  target: string,
  ...layers: RawEntry[][]
): Promise<void> {
  for (const entries of layers) {
    await extractLayer(layerStream(entries), target);
  }
}

/** The names under a directory, recursively, sorted ("a", "a/b", ...). */
async function namesUnder(root: string, relative = ""): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(`${root}/${relative}`)) {
    const path = relative ? `${relative}/${entry.name}` : entry.name;
    names.push(path);
    if (entry.isDirectory) names.push(...await namesUnder(root, path));
  }
  return names.sort();
}

Deno.test("extractLayer() keeps what an opaque marker's own layer wrote before it, and removes what lower layers left", async () => {
  await using sandbox = await makeSandbox();
  await extractAll(
    sandbox.target,
    [
      { name: "d/", type: "5", mode: 0o755 },
      { name: "d/old", body: "lower" },
      { name: "d/same", body: "lower" },
      { name: "d/sub/", type: "5", mode: 0o755 },
      { name: "d/sub/lower", body: "lower" },
      { name: "d/gone/", type: "5", mode: 0o755 },
      { name: "d/gone/deep", body: "lower" },
    ],
    [
      // The marker comes last: entries before it are this layer's and stay.
      { name: "d/", type: "5", mode: 0o755 },
      { name: "d/new", body: "upper" },
      { name: "d/same", body: "upper" },
      { name: "d/sub/", type: "5", mode: 0o755 },
      { name: "d/sub/upper", body: "upper" },
      { name: "d/fresh/inner", body: "upper" },
      { name: "d/.wh..wh..opq" },
    ],
  );
  assert.deepEqual(await namesUnder(sandbox.target), [
    "d",
    "d/fresh",
    "d/fresh/inner",
    "d/new",
    "d/same",
    "d/sub",
    "d/sub/upper",
    "lower",
  ]);
  assert.equal(await Deno.readTextFile(`${sandbox.target}/d/same`), "upper");
  assert.deepEqual(await sandbox.missing(), []);
});

Deno.test("extractLayer() applies a whiteout only to lower layers, wherever it comes in the archive", async () => {
  await using sandbox = await makeSandbox();
  await extractAll(
    sandbox.target,
    [{ name: "a", body: "lower" }, { name: "dir/lower", body: "lower" }],
    [
      { name: "b", body: "upper" },
      { name: ".wh.b" },
      { name: ".wh.a" },
      { name: "dir/upper", body: "upper" },
      { name: ".wh.dir" },
      { name: "missing/.wh.x" },
      { name: ".wh..wh.plnk" },
    ],
  );
  assert.deepEqual(await namesUnder(sandbox.target), [
    "b",
    "dir",
    "dir/upper",
    "lower",
  ]);
  // A whiteout in a directory that does not exist makes nothing.
  assert.deepEqual(await sandbox.missing(), []);
});

Deno.test("extractLayer() clears only inside the target for an opaque marker at its root", async () => {
  await using sandbox = await makeSandbox();
  await extractAll(sandbox.target, [{ name: "x", body: "lower" }], [
    { name: "kept", body: "upper" },
    { name: ".wh..wh..opq" },
    { name: "./.wh..wh..opq" },
  ]);
  assert.deepEqual(await namesUnder(sandbox.target), ["kept"]);
  assert.deepEqual(await sandbox.missing({ lower: false }), []);
});

const UNSAFE_NAMES: [string, RawEntry[], RegExp][] = [
  ["`.wh..`", [{ name: ".wh.." }], /not the directory itself/],
  ["`.wh...`", [{ name: ".wh..." }], /not its parent/],
  ["`.wh.`", [{ name: ".wh." }], /not the directory itself/],
  ["`a/./.wh..`", [{ name: "a/./.wh.." }], /not the directory itself/],
  ["`a//.wh...`", [{ name: "a//.wh..." }], /not its parent/],
  ["a pax path `.wh...`", [{ name: "x", pax: { path: ".wh..." } }], /parent/],
  ["a GNU long name `.wh..`", [{ name: "x", gnuLongName: ".wh.." }], /itself/],
  [
    "a pax path with a NUL byte",
    [{ name: "x", pax: { path: ".wh.lower\0/../.." } }],
    /NUL byte/,
  ],
  ["a whiteout `../.wh.x`", [{ name: "../.wh.x" }], /would leave/],
  [
    "a whiteout through a symlink to outside",
    [
      { name: "out", type: "2", linkname: "/" },
      { name: "out/.wh.etc" },
    ],
    /parent "out" is a symlink/,
  ],
  [
    "an opaque marker through a symlink",
    [
      { name: "out", type: "2", linkname: "/tmp" },
      { name: "out/.wh..wh..opq" },
    ],
    /parent "out" is a symlink/,
  ],
  [
    "a file under a whiteout name",
    [{ name: ".wh.lower/file", body: "x" }],
    /directory "\.wh\.lower" is a whiteout name/,
  ],
  [
    "a file named `.`",
    [{ name: ".", type: "0", body: "x" }],
    /replace the target/,
  ],
  ["a symlink named `.`", [{ name: ".", type: "2", linkname: "/" }], /target/],
  [
    "a name longer than PATH_MAX",
    [{ name: "x", pax: { path: "a/".repeat(3000) + "f" } }],
    /longer than 4096 bytes/,
  ],
  [
    "a hardlink to itself",
    [{ name: "lower", type: "1", linkname: "lower" }],
    /is the entry itself/,
  ],
  [
    "a hardlink through `..` in a pax linkpath",
    [{ name: "h", type: "1", linkname: "x", pax: { linkpath: "a/../../x" } }],
    /hardlink target "a\/\.\.\/\.\.\/x": "\.\." would leave/,
  ],
  [
    "a symlink climbing out in a pax linkpath",
    [{ name: "s", type: "2", linkname: "x", pax: { linkpath: "../../x" } }],
    /symlink target "\.\.\/\.\.\/x" leaves/,
  ],
];

for (const [what, entries, message] of UNSAFE_NAMES) {
  Deno.test(`extractLayer() refuses ${what} and touches nothing outside or above`, async () => {
    await using sandbox = await makeSandbox();
    await assert.rejects(
      extractLayer(layerStream(entries), sandbox.target),
      (error: unknown) => {
        assert.ok(error instanceof UnsafeEntryError, String(error));
        assert.match(error.message, message);
        return true;
      },
    );
    assert.deepEqual(await sandbox.missing(), []);
  });
}

Deno.test("extractLayer() removes a whited-out symlink itself, never what it points to", async () => {
  await using sandbox = await makeSandbox();
  await extractAll(
    sandbox.target,
    [
      { name: "up", type: "2", linkname: "/" },
      { name: "sib", type: "2", linkname: "../sibling-sentinel" },
    ],
  ).catch(() => {});
  await Deno.symlink(`${sandbox.root}/dir`, `${sandbox.target}/outdir`);
  await extractAll(sandbox.target, [{ name: ".wh.outdir" }, {
    name: ".wh.up",
  }, { name: ".wh..wh..opq" }]);
  assert.deepEqual(await namesUnder(sandbox.target), []);
  assert.deepEqual(await sandbox.missing({ lower: false }), []);
});

Deno.test("extractLayer() keeps setuid, setgid and sticky bits on files and directories", async () => {
  await using sandbox = await makeSandbox();
  const modes: Record<string, number> = {
    "setuid": 0o4755,
    "setgid": 0o2755,
    "sticky-file": 0o1644,
    "all": 0o7755,
    "dirs/sticky/": 0o1777,
    "dirs/setgid/": 0o2775,
    "dirs/readonly/": 0o2555,
    "dirs/readonly/inside": 0o4711,
  };
  await extractAll(
    sandbox.target,
    Object.entries(modes).map(([name, mode]) =>
      name.endsWith("/")
        ? { name, type: "5", mode }
        : { name, mode, body: "#!/bin/sh\n" }
    ),
  );
  for (const [name, mode] of Object.entries(modes)) {
    const info = await Deno.stat(`${sandbox.target}/${name}`);
    assert.equal(
      (info.mode! & 0o7777).toString(8),
      mode.toString(8),
      `mode of ${name}`,
    );
  }
});

Deno.test("readTar (through extractLayer) applies pax size and GNU long names, and ignores global headers", async () => {
  await using sandbox = await makeSandbox();
  const long = `${"p".repeat(150)}/${"q".repeat(150)}`;
  const body = "0123456789";
  const tar = rawArchive([
    { name: "g", type: "g", body: "20 path=elsewhere/x\n" },
    { name: "sized", size: 0, pax: { size: String(body.length) }, body },
    { name: "short", gnuLongName: long, body: "long" },
    { name: "l", type: "2", linkname: "x", pax: { linkpath: long } },
  ]);
  const result = await extractLayer(
    new Response(gzip(tar)).body!,
    sandbox.target,
  );
  assert.equal(result.uncompressedDigest, digestOf(tar));
  assert.equal(await Deno.readTextFile(`${sandbox.target}/sized`), body);
  assert.equal(await Deno.readTextFile(`${sandbox.target}/${long}`), "long");
  assert.equal(await Deno.readLink(`${sandbox.target}/l`), long);
  assert.equal(result.entries, 3);
});

const MALFORMED: [string, () => Uint8Array, RegExp][] = [
  [
    "a bad checksum",
    () => {
      const tar = rawArchive([{ name: "a", body: "a" }]);
      tar[0] ^= 1;
      return tar;
    },
    /checksum/,
  ],
  [
    "data after the end-of-archive marker",
    () => new Uint8Array([...rawArchive([{ name: "a", body: "a" }]), 1]),
    /follows the end-of-archive marker/,
  ],
  [
    "no end-of-archive marker",
    () => rawArchive([{ name: "a", body: "a" }]).slice(0, 1024),
    /without its end-of-archive marker/,
  ],
  [
    "a pax header over 1 MiB",
    () =>
      rawArchive([{ name: "a", pax: { comment: "c".repeat(1024 * 1024) } }]),
    /pax header of \d+ bytes is larger than the 1048576 allowed/,
  ],
  [
    "a GNU long link over 1 MiB",
    () =>
      new Uint8Array([
        ...ustarBlock({ name: "././@LongLink", type: "K", size: 2 ** 21 }),
        ...new Uint8Array(2 ** 21),
      ]),
    /GNU long-link header of 2097152 bytes is larger/,
  ],
  [
    "a malformed pax record",
    () => rawArchive([{ name: "x", type: "x", body: "99 path=x\n" }]),
    /pax record at byte 0 is malformed/,
  ],
  [
    "a non-numeric pax size",
    () => rawArchive([{ name: "a", pax: { size: "-1" } }]),
    /pax size "-1" is not a size/,
  ],
];

for (const [what, bytes, message] of MALFORMED) {
  Deno.test(`extractLayer() refuses a tar with ${what} as a LayerFormatError`, async () => {
    await using sandbox = await makeSandbox();
    await assert.rejects(
      extractLayer(new Response(gzip(bytes())).body!, sandbox.target),
      (error: unknown) => {
        assert.ok(error instanceof LayerFormatError, String(error));
        assert.match(error.message, message);
        return true;
      },
    );
    assert.deepEqual(await sandbox.missing(), []);
  });
}

for (const compression of ["gzip", "zstd"] as const) {
  Deno.test(`extractLayer() frees ${compression} output as it goes: 128 MiB of zeros stay out of memory`, async () => {
    await using sandbox = await makeSandbox();
    const size = 128 * 1024 * 1024;
    const zeros = new Uint8Array(1024 * 1024);
    let sent = -1;
    const layer = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent < 0) controller.enqueue(ustarBlock({ name: "zeros", size }));
        else if (sent < size) controller.enqueue(zeros);
        else {
          controller.enqueue(new Uint8Array(1024));
          controller.close();
        }
        sent = Math.max(sent, 0) + (sent < 0 ? 0 : zeros.byteLength);
      },
    });
    const compressed = new Uint8Array(
      await new Response(compress(layer, compression)).arrayBuffer(),
    );
    // External memory (array buffers) only: the collector's own timing does not enter it.
    const base = Deno.memoryUsage().external;
    let peak = base;
    const sampler = setInterval(() => {
      peak = Math.max(peak, Deno.memoryUsage().external);
    }, 1);
    try {
      await extractLayer(new Response(compressed).body!, sandbox.target, {
        compression,
      });
    } finally {
      clearInterval(sampler);
    }
    assert.equal((await Deno.stat(`${sandbox.target}/zeros`)).size, size);
    const growthMiB = (peak - base) / (1024 * 1024);
    assert.ok(
      growthMiB < 32,
      `array buffers grew by ${growthMiB.toFixed(0)} MiB`,
    );
  });
}

// Bad input from the outside world (issue 7, item 3): hostile or damaged tarballs, written byte
// by byte.

const encoder = new TextEncoder();

/** One ustar header block, built by hand so that nothing normalises the hostile parts. */
function tarHeader(
  name: string,
  options: { size?: number | string; type?: string; linkname?: string } = {},
): Uint8Array {
  const block = new Uint8Array(512);
  const put = (offset: number, length: number, text: string) =>
    block.set(encoder.encode(text).subarray(0, length), offset);
  const size = typeof options.size === "string"
    ? options.size
    : (options.size ?? 0).toString(8).padStart(11, "0") + "\0";
  put(0, 100, name);
  put(100, 8, "0000644\0");
  put(108, 8, "0000000\0");
  put(116, 8, "0000000\0");
  put(124, 12, size);
  put(136, 12, "00000000000\0");
  put(156, 1, options.type ?? "0");
  put(157, 100, options.linkname ?? "");
  put(257, 6, "ustar\0");
  put(263, 2, "00");
  return withChecksum(block);
}

function withChecksum(block: Uint8Array): Uint8Array {
  block.fill(32, 148, 156);
  const sum = block.reduce((total, byte) => total + byte, 0);
  block.set(encoder.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return block;
}

/** A file entry: header and body padded to 512 bytes. */
function tarFile(name: string, body: string): Uint8Array {
  const bytes = encoder.encode(body);
  const padded = new Uint8Array(Math.ceil(bytes.byteLength / 512) * 512);
  padded.set(bytes);
  return concat(tarHeader(name, { size: bytes.byteLength }), padded);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}

const END = new Uint8Array(1024);

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A header whose size field says 1 TiB in base-256, as GNU tar writes sizes over 8 GiB. */
function terabyteHeader(name: string): Uint8Array {
  const block = tarHeader(name);
  block.fill(0, 124, 136);
  block[124] = 0x80;
  block[131] = 0x01; // 2^40
  return withChecksum(block);
}

/** Every path under a directory, with file contents, for before/after comparisons. */
async function snapshot(dir: string, prefix = ""): Promise<string[]> {
  const lines: string[] = [];
  for await (const entry of Deno.readDir(`${dir}/${prefix}`)) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) lines.push(`${path}/`, ...await snapshot(dir, path));
    else if (entry.isSymlink) {
      lines.push(`${path} -> ${await Deno.readLink(`${dir}/${path}`)}`);
    } else lines.push(`${path}: ${await Deno.readTextFile(`${dir}/${path}`)}`);
  }
  return lines.sort();
}

type LayerCase = [
  what: string,
  bytes: () => Uint8Array | Promise<Uint8Array>,
  type: typeof UnsafeEntryError | typeof LayerFormatError,
  patterns: RegExp[],
  gzipped?: boolean,
];

const BAD_LAYERS: LayerCase[] = [
  [
    "a ../ entry",
    () => concat(tarFile("../evil", "x"), END),
    UnsafeEntryError,
    [/entry "\.\.\/evil": "\.\." would leave the target directory/],
  ],
  [
    "a nested ../ entry",
    () => concat(tarFile("a/b/../../../outside/secret", "x"), END),
    UnsafeEntryError,
    [/entry "a\/b\/\.\.\/\.\.\/\.\.\/outside\/secret"/],
  ],
  [
    "an absolute entry",
    () => concat(tarFile("/tmp/evil", "x"), END),
    UnsafeEntryError,
    [/entry "\/tmp\/evil": absolute paths are not allowed/],
  ],
  [
    "a symlink that climbs out",
    () => concat(tarHeader("up", { type: "2", linkname: "../outside" }), END),
    UnsafeEntryError,
    [/entry "up": its symlink target "\.\.\/outside" leaves the target directory/],
  ],
  [
    "a file written through a symlink",
    () =>
      concat(
        tarHeader("out", { type: "2", linkname: "/" }),
        tarFile("out/tmp/evil", "x"),
        END,
      ),
    UnsafeEntryError,
    [/entry "out\/tmp\/evil": its parent "out" is a symlink/],
  ],
  [
    "a file written through a relative symlink to the parent",
    () =>
      concat(
        tarHeader("d", { type: "5" }),
        tarHeader("d/up", { type: "2", linkname: ".." }),
        tarFile("d/up/x", "x"),
        END,
      ),
    UnsafeEntryError,
    [/its parent "up" is a symlink/],
  ],
  [
    "an empty symlink target",
    () => concat(tarHeader("s", { type: "2", linkname: "" }), END),
    UnsafeEntryError,
    [/entry "s": its symlink target is empty/],
  ],
  [
    "a hardlink out of the target",
    () =>
      concat(tarHeader("h", { type: "1", linkname: "../outside/secret" }), END),
    UnsafeEntryError,
    [/entry "h": its hardlink target "\.\.\/outside\/secret": "\.\." would leave/],
  ],
  [
    "an absolute hardlink",
    () => concat(tarHeader("h", { type: "1", linkname: "/etc/passwd" }), END),
    UnsafeEntryError,
    [/"\/etc\/passwd": absolute paths are not allowed/],
  ],
  [
    "a hardlink through a symlink",
    () =>
      concat(
        tarHeader("l", { type: "2", linkname: "/etc" }),
        tarHeader("h", { type: "1", linkname: "l/passwd" }),
        END,
      ),
    UnsafeEntryError,
    [/entry "h": its hardlink target "l\/passwd" goes through a symlink/],
  ],
  [
    "a hardlink to a directory",
    () =>
      concat(
        tarHeader("d", { type: "5" }),
        tarHeader("h", { type: "1", linkname: "d" }),
        END,
      ),
    UnsafeEntryError,
    [/entry "h": its hardlink target "d" is not a regular file/],
  ],
  [
    "a hardlink to nothing",
    () => concat(tarHeader("h", { type: "1", linkname: "missing" }), END),
    UnsafeEntryError,
    [/entry "h": its hardlink target "missing" does not exist/],
  ],
  [
    "an empty hardlink target",
    () => concat(tarHeader("h", { type: "1", linkname: "" }), END),
    UnsafeEntryError,
    [/entry "h": its hardlink target is empty/],
  ],
  [
    "a file under a file",
    () => concat(tarFile("f", "x"), tarFile("f/g", "y"), END),
    UnsafeEntryError,
    [/entry "f\/g": its parent "f" is not a directory/],
  ],
  [
    "a size of 8 GiB and a stream that ends",
    () =>
      concat(
        tarHeader("huge", { size: "77777777777\0" }),
        new Uint8Array(4096).fill(65),
      ),
    LayerFormatError,
    [/^Cannot extract layer entry "huge": the archive is damaged or ends inside this entry/],
  ],
  [
    "a size of 1 TiB and a stream that ends",
    () =>
      concat(tarFile("ok", "fine"), terabyteHeader("tib"), new Uint8Array(512)),
    LayerFormatError,
    [/^Cannot extract layer (entry "tib"|\(after entry "ok"\)): /, /truncated/],
  ],
  [
    "a size field that is not a number",
    () =>
      concat(
        tarFile("ok", "fine"),
        tarHeader("bad", { size: "12x45678901\0" }),
        END,
      ),
    LayerFormatError,
    [/^Cannot extract layer \(after entry "ok"\): the archive is damaged: /],
  ],
  [
    "a body cut short",
    () => tarFile("cut", "y".repeat(5_000)).subarray(0, 512 + 2_000),
    LayerFormatError,
    [/^Cannot extract layer entry "cut": /],
  ],
  [
    "a header cut short",
    () => concat(tarFile("ok", "fine"), tarHeader("next").subarray(0, 100)),
    LayerFormatError,
    [/^Cannot extract layer \(after entry "ok"\): the archive is damaged: /],
  ],
  [
    "only half a header",
    () => tarHeader("first").subarray(0, 300),
    LayerFormatError,
    [/^Cannot extract layer: the archive is damaged: /],
  ],
  [
    "a header with a bad checksum",
    () => {
      const h = tarHeader("x");
      h[0] = 0x79;
      return concat(h, END);
    },
    LayerFormatError,
    [/^Cannot extract layer: the archive is damaged: /],
  ],
  ["non-tar garbage", () => new Uint8Array(8192).fill(7), LayerFormatError, [
    /^Cannot extract layer: the archive is damaged: /,
  ]],
  [
    "random bytes",
    () => crypto.getRandomValues(new Uint8Array(4096)),
    LayerFormatError,
    [/^Cannot extract layer/],
  ],
  ["gzip garbage", () => new Uint8Array(8192).fill(7), LayerFormatError, [
    /^Cannot extract layer: the archive is damaged: .*gzip/,
  ], true],
  [
    "a cut gzip stream",
    async () =>
      (await gzip(concat(tarFile("a", "a".repeat(100_000)), END))).subarray(
        0,
        60,
      ),
    LayerFormatError,
    [/^Cannot extract layer/],
    true,
  ],
  [
    "a gzip stream with a bad checksum",
    async () => {
      const z = await gzip(concat(tarFile("a", "abc"), END));
      z[z.length - 6] ^= 0xff;
      return z;
    },
    LayerFormatError,
    [/gzip/],
    true,
  ],
  [
    "plain tar where gzip is expected",
    () => concat(tarFile("a", "abc"), END),
    LayerFormatError,
    [/gzip/],
    true,
  ],
];

for (const [what, bytes, type, patterns, gzipped] of BAD_LAYERS) {
  Deno.test(`bad input: a layer with ${what} gives a ${type.name} and writes nothing outside`, async () => {
    const sandbox = await Deno.makeTempDir({ prefix: "oci-bad-input-" });
    try {
      await Deno.mkdir(`${sandbox}/outside`);
      await Deno.writeTextFile(`${sandbox}/outside/secret`, "secret");
      const target = `${sandbox}/target`;
      await Deno.mkdir(target);
      const before = await snapshot(sandbox);
      await assert.rejects(
        extractLayer(
          new Response(await bytes() as Uint8Array<ArrayBuffer>).body!,
          target,
          { compression: gzipped ? "gzip" : "none" },
        ),
        (error: unknown) => {
          assertTyped(error, type, ...patterns);
          if (error instanceof UnsafeEntryError) {
            assert.match(
              error.message,
              new RegExp(
                `^Cannot extract layer entry "${escapeRegExp(error.entry)}"`,
              ),
            );
          }
          return true;
        },
      );
      const after = await snapshot(sandbox);
      const outside = (lines: string[]) =>
        lines.filter((l) => !l.startsWith("target"));
      assert.deepEqual(
        outside(after),
        outside(before),
        "nothing changed outside the target",
      );
      assert.deepEqual(
        after.filter((l) => l.includes(".oci-tmp-")),
        [],
        "no temporary file left",
      );
      for (const line of after.filter((l) => l.startsWith("target/"))) {
        assert.doesNotMatch(
          line,
          /^target\/(cut|huge|tib)\b/,
          "no partial file under its final name",
        );
      }
    } finally {
      await Deno.remove(sandbox, { recursive: true });
    }
  });
}
