// The benchmark's untimed pieces, so that `deno task bench` does not rot: inputs, parsers, table.
import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import {
  formatTable,
  measure,
  median,
  parseOpensslDigest,
  parseTimeOutput,
  writeRandomGzip,
  writeTree,
  writeZerosLayer,
} from "../bench/lib.ts";
import { storeIndex } from "../bench/images.ts";
import { digestOf } from "../src/oci/digest.ts";
import type { ImageManifest } from "../src/oci/manifest.ts";
import { parseReference } from "../src/oci/reference.ts";
import { copyGraph } from "../src/image/copy.ts";
import { resolveImage } from "../src/image/resolve.ts";
import { fetchBytes } from "../src/store/store.ts";
import { memoryStore } from "../src/store/memory_store.ts";
import { remoteStore } from "../src/store/remote_store.ts";
import { createRegistry } from "../src/server/mod.ts";
import { requirePeer } from "../peers/available.ts";

Deno.test("bench parses GNU time and openssl outputs", () => {
  const time =
    '\tCommand being timed: "x"\n\tMaximum resident set size (kbytes): 21504\n\tExit status: 0\n';
  assert.equal(parseTimeOutput(time), 21);
  assert.throws(() => parseTimeOutput("nothing"), /no peak RSS/);
  const hex = "a".repeat(64);
  assert.equal(parseOpensslDigest(`${hex} *file\n`), `sha256:${hex}`);
  assert.throws(
    () => parseOpensslDigest("SHA2-256(file)= abc"),
    /cannot read openssl/,
  );
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
});

Deno.test("bench inputs: a gzip of the asked size that gunzips back, and a tree of about the asked size", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeRandomGzip(`${dir}/x.gz`, 100_000.5);
    const raw = gunzipSync(await Deno.readFile(`${dir}/x.gz`));
    assert.equal(raw.byteLength, 100_000);
    await writeTree(`${dir}/tree`, 1_000_000, 20);
    let total = 0;
    let files = 0;
    const walk = async (path: string) => {
      for await (const entry of Deno.readDir(path)) {
        if (entry.isDirectory) await walk(`${path}/${entry.name}`);
        else {
          total += (await Deno.stat(`${path}/${entry.name}`)).size;
          files++;
        }
      }
    };
    await walk(`${dir}/tree`);
    assert.equal(files, 20);
    assert.ok(total >= 1_000_000 && total < 1_000_100, String(total));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "bench measures a peer command and reads its digest",
  ...requirePeer("openssl", "time"),
  async fn() {
    const path = await Deno.makeTempFile();
    try {
      await Deno.writeTextFile(path, "bench");
      const result = await measure("openssl", ["dgst", "-sha256", "-r", path]);
      assert.equal(parseOpensslDigest(result.stdout), digestOf("bench"));
      assert.ok(result.peakRssMiB > 0 && result.seconds > 0);
    } finally {
      await Deno.remove(path);
    }
  },
});

Deno.test("bench input: a layer of zeros is a small gzip of one file that extracts to its size", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const size = 3 * 1024 * 1024 + 5;
    await writeZerosLayer(`${dir}/zeros.tar.gz`, size);
    const gz = await Deno.readFile(`${dir}/zeros.tar.gz`);
    assert.ok(gz.byteLength < size / 500, String(gz.byteLength));
    const { extractLayer } = await import("../src/layer/extract_layer.ts");
    const result = await extractLayer(new Response(gz).body!, `${dir}/out`);
    assert.equal(result.entries, 1);
    assert.equal((await Deno.stat(`${dir}/out/zeros`)).size, size);
    assert.equal(
      result.uncompressedDigest,
      digestOf(new Uint8Array(gunzipSync(gz))),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench table lists every row with its ratio and target", () => {
  const table = formatTable([
    {
      case: "sha256",
      ours: 1,
      peer: 0.9,
      peerName: "openssl",
      unit: "s",
      target: "≥ 0.75",
      ratio: 0.9,
      met: true,
      oursRssMiB: 70,
      peerRssMiB: 6,
    },
    {
      case: "build",
      ours: 2,
      peer: 6,
      peerName: "tar | gzip -6",
      unit: "s",
      target: "≥ 3",
      ratio: 3,
      met: true,
    },
    {
      case: "mount",
      ours: 0,
      peer: 0,
      peerName: "skopeo",
      unit: "requests",
      target: "0",
      ratio: NaN,
      met: true,
    },
  ]);
  assert.match(
    table,
    /\| sha256 \| 1\.00 s \| 0\.90 s \(openssl\) \| 0\.90 \| ≥ 0\.75 \| yes \| 70 \/ 6 \|/,
  );
  // A peer's pipe is escaped: the row keeps its seven cells.
  const build = table.split("\n").find((line) => line.startsWith("| build"))!;
  assert.match(build, /\(tar \\\| gzip -6\)/);
  assert.equal(build.split(/(?<!\\)\|/).length, 9);
  assert.match(
    table,
    /\| mount \| 0 requests \| 0 requests \(skopeo\) \| – \| 0 \| yes \| – \|/,
  );
});

Deno.test("bench image: an index of one image per platform, copied to a registry, pulls by platform", async () => {
  const platforms = [
    { os: "linux", architecture: "amd64" },
    { os: "linux", architecture: "arm64", variant: "v8" },
  ];
  const built = memoryStore();
  const image = await storeIndex(built, platforms, [1000, 2000, 3000], "v1");
  const registry = remoteStore(parseReference("127.0.0.1:5000/bench/multi"), {
    opener: createRegistry(),
  });
  await copyGraph(built, registry, image.index, { tag: "v1" });
  const { manifest } = await resolveImage(registry, "v1", {
    platform: platforms[1],
  });
  const document = manifest.document as ImageManifest;
  assert.deepEqual(document.layers, image.layers[1]);
  assert.notDeepEqual(image.layers[0], image.layers[1]);
  const config = JSON.parse(
    new TextDecoder().decode(await fetchBytes(registry, document.config)),
  );
  assert.equal(config.variant, "v8");
  for (const [i, layer] of document.layers.entries()) {
    const raw = gunzipSync(await fetchBytes(registry, layer));
    assert.equal(raw.byteLength, [1000, 2000, 3000][i]);
    assert.equal(config.rootfs.diff_ids[i], digestOf(new Uint8Array(raw)));
  }
});
