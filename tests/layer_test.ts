import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { createLayer } from "../src/layer/create_layer.ts";
import { extractLayer, UnsafeEntryError } from "../src/layer/extract_layer.ts";
import { createTarPacker, type TarHeader } from "../src/layer/tar.ts";
import { openLayout } from "../src/layout/layout.ts";
import { digestOf } from "../src/reference/digest.ts";
import { requirePeer } from "./support/peers.ts";

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
      extractLayer(new Response(cut).body!, target, { gzip: false }),
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
        gzip: false,
      }),
      /damaged|checksum|Invalid/i,
    );
  } finally {
    await Deno.remove(target, { recursive: true });
  }
});
