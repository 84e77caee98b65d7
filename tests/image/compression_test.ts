// Layer compression end to end: push tar+zstd (and plain tar) layers, pull them back into the
// same tree, on the embedded registry and distribution; skopeo and umoci read the zstd image we
// push, we read the zstd image skopeo pushes; a push on a Docker-format base writes an OCI
// manifest throughout.
import assert from "node:assert/strict";
import { parseReference } from "../../src/oci/reference.ts";
import { createLayer } from "../../src/layer/create_layer.ts";
import type { Compression } from "../../src/layer/compression.ts";
import { openLayout } from "../../src/store/layout_store.ts";
import { pushImage } from "../../src/image/push.ts";
import { pullImage } from "../../src/image/pull.ts";
import { parsePlatform } from "../../src/oci/platform.ts";
import type { ImageManifest } from "../../src/oci/manifest.ts";
import { createOpener } from "../../src/transport/opener.ts";
import { registryTest } from "../support/registries.ts";
import { registryTransport } from "../support/in_process.ts";

const transport = createOpener({
  transport: registryTransport,
  credentials: () => Promise.resolve(undefined),
});
const platform = parsePlatform("linux/amd64");

async function run(
  command: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(command, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

async function runOk(command: string, ...args: string[]): Promise<string> {
  const out = await run(command, ...args);
  assert.equal(out.code, 0, `${command} ${args.join(" ")}: ${out.stderr}`);
  return out.stdout;
}

/** Everything about a tree that a round trip must keep. */
async function describe(root: string, relative = ""): Promise<string[]> {
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
      lines.push(`d ${path} ${mode}`, ...await describe(root, path));
    } else {
      lines.push(
        `f ${path} ${mode} ${await Deno.readTextFile(`${root}/${path}`)}`,
      );
    }
  }
  return lines;
}

/** A small tree with what layers carry: modes, a symlink, nested directories. */
async function makeTree(root: string): Promise<void> {
  await Deno.mkdir(`${root}/opt/app/bin`, { recursive: true });
  await Deno.writeTextFile(`${root}/opt/app/bin/run`, "#!/bin/sh\necho app\n");
  await Deno.chmod(`${root}/opt/app/bin/run`, 0o755);
  await Deno.writeTextFile(
    `${root}/opt/app/data.txt`,
    "compressible ".repeat(5000),
  );
  await Deno.symlink("bin/run", `${root}/opt/app/run`);
}

const MEDIA_TYPES: Record<Compression, string> = {
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  none: "application/vnd.oci.image.layer.v1.tar",
};

registryTest(
  "pushImage() of a zstd layer and of a plain tar lists their media types, and pullImage() extracts the same tree",
  async (start) => {
    await using registry = await start();
    const work = await Deno.makeTempDir({ prefix: "oci-zstd-" });
    try {
      await makeTree(`${work}/tree`);
      const stage = await openLayout(`${work}/stage`);
      for (const compression of ["zstd", "none"] as const) {
        const layer = await createLayer(`${work}/tree`, stage, {
          compression,
        });
        const ref = parseReference(`${registry.host}/app/${compression}:v1`);
        const pushed = await pushImage(ref, {
          layers: [layer],
          platform,
          transport,
        });
        const out = `${work}/out-${compression}`;
        const result = await pullImage(ref, out, {
          transport,
          cache: `${work}/cache-${compression}`,
          platform,
        });
        assert.equal(result.descriptor.digest, pushed.digest);
        assert.deepEqual(
          result.manifest.layers.map((l) => [l.mediaType, l.digest]),
          [[MEDIA_TYPES[compression], layer.compressedDigest]],
        );
        assert.deepEqual(result.config.rootfs.diff_ids, [
          layer.uncompressedDigest,
        ]);
        assert.deepEqual(await describe(out), await describe(`${work}/tree`));
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
);

/**
 * Whether this umoci reads zstd layers: 0.5.0 and later do; Debian's 0.4.7 answers "blob is
 * not correct mediatype" (it knows tar and tar+gzip only).
 */
async function umociReadsZstd(): Promise<boolean> {
  const version = /(\d+)\.(\d+)\.(\d+)/.exec(
    (await run("umoci", "--version")).stdout,
  );
  if (version === null) return true;
  const [major, minor] = [Number(version[1]), Number(version[2])];
  return major > 0 || minor >= 5;
}

registryTest(
  "a zstd image we push is read by skopeo (digests checked) and by umoci where it knows zstd",
  async (start) => {
    await using registry = await start();
    const work = await Deno.makeTempDir({ prefix: "oci-zstd-" });
    try {
      await makeTree(`${work}/tree`);
      // Large enough for several zstd frames (one per 2 MiB of tar): every reader must go on
      // past the first.
      await Deno.writeTextFile(
        `${work}/tree/opt/app/big.txt`,
        Array.from({ length: 500_000 }, (_, i) => `line ${i * 7919}\n`).join(
          "",
        ),
      );
      const layer = await createLayer(
        `${work}/tree`,
        await openLayout(`${work}/stage`),
        { compression: "zstd" },
      );
      const ref = parseReference(`${registry.host}/app/zstd:v1`);
      const pushed = await pushImage(ref, {
        layers: [layer],
        platform,
        transport,
      });
      const raw = JSON.parse(
        await runOk(
          "skopeo",
          "inspect",
          "--raw",
          "--tls-verify=false",
          `docker://${registry.host}/app/zstd:v1`,
        ),
      ) as ImageManifest;
      assert.equal(raw.layers[0].mediaType, MEDIA_TYPES.zstd);
      // skopeo copies it into a layout, decompressing nothing but checking every digest.
      await runOk(
        "skopeo",
        "--insecure-policy",
        "copy",
        "--src-tls-verify=false",
        `docker://${registry.host}/app/zstd:v1`,
        `oci:${work}/layout:v1`,
      );
      const index = JSON.parse(
        await Deno.readTextFile(`${work}/layout/index.json`),
      );
      assert.equal(index.manifests[0].digest, pushed.digest);
      // skopeo recompressing it to gzip reads the zstd stream through.
      await runOk(
        "skopeo",
        "--insecure-policy",
        "copy",
        "--dest-compress-format",
        "gzip",
        `oci:${work}/layout:v1`,
        `oci:${work}/gzip:v1`,
      );
      await runOk(
        "umoci",
        "unpack",
        "--rootless",
        "--image",
        `${work}/gzip:v1`,
        `${work}/bundle-gzip`,
      );
      assert.deepEqual(
        await describe(`${work}/bundle-gzip/rootfs`),
        await describe(`${work}/tree`),
      );
      const unpack = await run(
        "umoci",
        "unpack",
        "--rootless",
        "--image",
        `${work}/layout:v1`,
        `${work}/bundle`,
      );
      if (!(await umociReadsZstd())) {
        assert.notEqual(unpack.code, 0);
        assert.match(unpack.stderr, /mediatype.*zstd/);
        console.warn(
          `${
            (await run("umoci", "--version")).stdout.trim()
          } does not read zstd layers (0.5.0 does): only skopeo read our zstd image`,
        );
        return;
      }
      assert.equal(unpack.code, 0, unpack.stderr);
      assert.deepEqual(
        await describe(`${work}/bundle/rootfs`),
        await describe(`${work}/tree`),
      );
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
  { peers: ["skopeo", "umoci"] },
);

registryTest(
  "an image skopeo pushed with --dest-compress-format zstd pulls and extracts right",
  async (start) => {
    await using registry = await start();
    const work = await Deno.makeTempDir({ prefix: "oci-zstd-" });
    try {
      await makeTree(`${work}/tree`);
      // A layer no earlier run made: skopeo's blob-info cache (root's, in /var/lib) remembers
      // where it saw a blob by host:port, and when a later test's registry gets the same port
      // it mounts the known gzip blob instead of writing zstd (seen in CI).
      await Deno.writeTextFile(`${work}/tree/run-id`, crypto.randomUUID());
      const ref = parseReference(`${registry.host}/app/gzip:v1`);
      await pushImage(ref, {
        layers: [
          await createLayer(`${work}/tree`, await openLayout(`${work}/stage`)),
        ],
        platform,
        transport,
      });
      await runOk(
        "skopeo",
        "--insecure-policy",
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--dest-compress-format",
        "zstd",
        `docker://${registry.host}/app/gzip:v1`,
        `docker://${registry.host}/app/by-skopeo:v1`,
      );
      const result = await pullImage(
        parseReference(`${registry.host}/app/by-skopeo:v1`),
        `${work}/out`,
        { transport, cache: `${work}/cache`, platform },
      );
      assert.equal(result.manifest.layers[0].mediaType, MEDIA_TYPES.zstd);
      assert.deepEqual(
        await describe(`${work}/out`),
        await describe(`${work}/tree`),
      );
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
  { peers: ["skopeo"] },
);

registryTest(
  "pushImage() on a Docker-format base writes an OCI manifest throughout, which umoci unpacks",
  async (start) => {
    await using registry = await start();
    const work = await Deno.makeTempDir({ prefix: "oci-docker-base-" });
    try {
      // The base: one of our images, turned into Docker v2s2 by skopeo.
      await Deno.mkdir(`${work}/base/etc`, { recursive: true });
      await Deno.writeTextFile(`${work}/base/etc/os-release`, "NAME=base\n");
      const stage = await openLayout(`${work}/stage`);
      await pushImage(parseReference(`${registry.host}/base/oci:1`), {
        layers: [await createLayer(`${work}/base`, stage)],
        platform,
        config: { Env: ["PATH=/usr/bin"] },
        transport,
      });
      await runOk(
        "skopeo",
        "--insecure-policy",
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        `docker://${registry.host}/base/oci:1`,
        `docker://${registry.host}/base/docker:1`,
      );
      const base = JSON.parse(
        await runOk(
          "skopeo",
          "inspect",
          "--raw",
          "--tls-verify=false",
          `docker://${registry.host}/base/docker:1`,
        ),
      ) as ImageManifest;
      assert.equal(
        base.mediaType,
        "application/vnd.docker.distribution.manifest.v2+json",
      );
      assert.equal(
        base.layers[0].mediaType,
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
      );

      await makeTree(`${work}/app`);
      for (const compression of ["gzip", "zstd"] as const) {
        const layer = await createLayer(`${work}/app`, stage, { compression });
        const ref = parseReference(
          `${registry.host}/app/on-docker:${compression}`,
        );
        await pushImage(ref, {
          layers: [layer],
          base: parseReference(`${registry.host}/base/docker:1`),
          transport,
        });
        const manifest = JSON.parse(
          await runOk(
            "skopeo",
            "inspect",
            "--raw",
            "--tls-verify=false",
            `docker://${registry.host}/app/on-docker:${compression}`,
          ),
        ) as ImageManifest;
        assert.equal(
          manifest.mediaType,
          "application/vnd.oci.image.manifest.v1+json",
        );
        assert.equal(
          manifest.config.mediaType,
          "application/vnd.oci.image.config.v1+json",
        );
        assert.deepEqual(
          manifest.layers.map((l) => [l.mediaType, l.digest]),
          [
            [MEDIA_TYPES.gzip, base.layers[0].digest],
            [MEDIA_TYPES[compression], layer.compressedDigest],
          ],
        );
        const pulled = `${work}/pulled-${compression}`;
        await pullImage(ref, pulled, {
          transport,
          cache: `${work}/cache`,
          platform,
        });
        assert.equal(
          await Deno.readTextFile(`${pulled}/etc/os-release`),
          "NAME=base\n",
        );
        assert.deepEqual(
          (await describe(pulled)).filter((l) => l.includes("opt")),
          await describe(`${work}/app`),
        );
      }
      // umoci (through skopeo's layout) takes the gzip one; it refused the old mixture.
      await runOk(
        "skopeo",
        "--insecure-policy",
        "copy",
        "--src-tls-verify=false",
        `docker://${registry.host}/app/on-docker:gzip`,
        `oci:${work}/layout:v1`,
      );
      await runOk(
        "umoci",
        "unpack",
        "--rootless",
        "--image",
        `${work}/layout:v1`,
        `${work}/bundle`,
      );
      assert.equal(
        await Deno.readTextFile(`${work}/bundle/rootfs/etc/os-release`),
        "NAME=base\n",
      );
      assert.equal(
        await Deno.readTextFile(`${work}/bundle/rootfs/opt/app/bin/run`),
        "#!/bin/sh\necho app\n",
      );
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
  { peers: ["skopeo", "umoci"] },
);
