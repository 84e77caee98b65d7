import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

Deno.test("mod.ts imports by URL from an empty folder with no config or import map", async () => {
  // Any static file server will do: serve the repository as it is.
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const path = join(
        ROOT,
        decodeURIComponent(new URL(request.url).pathname),
      );
      if (!path.startsWith(ROOT)) return new Response(null, { status: 403 });
      try {
        return new Response(await Deno.readFile(path), {
          headers: { "content-type": "application/typescript" },
        });
      } catch {
        return new Response(null, { status: 404 });
      }
    },
  );
  const host = `127.0.0.1:${server.addr.port}`;
  const empty = await Deno.makeTempDir();
  try {
    const script = `
      const oci = await import("http://${host}/mod.ts");
      const ref = oci.parseReference("ubuntu:22.04");
      console.log(JSON.stringify({
        ref: oci.formatReference(ref),
        registry: ref.registry,
        repository: ref.repository,
        digest: oci.digestOf("hello"),
        exports: Object.keys(oci).length,
      }));
    `;
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        "--no-config",
        `--allow-import=${host}`,
        "--reload=http://" + host,
        script,
      ],
      cwd: empty,
      env: { NO_COLOR: "1" },
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const result = JSON.parse(new TextDecoder().decode(output.stdout));
    assert.equal(result.ref, "docker.io/library/ubuntu:22.04");
    assert.equal(result.registry, "docker.io");
    assert.equal(result.repository, "library/ubuntu");
    assert.equal(
      result.digest,
      "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
    );
    assert.ok(result.exports > 20);
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});

/** The parallel compressors, as [codec, module, export]: each is checked loaded by URL. */
const COMPRESSORS = [
  ["gzip", "parallel_gzip.ts", "parallelGzip"],
  ["zstd", "parallel_zstd.ts", "parallelZstd"],
] as const;

Deno.test("a layer built by URL import gzips and zstds on Workers loaded by URL, with the local bytes", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const path = join(
        ROOT,
        decodeURIComponent(new URL(request.url).pathname),
      );
      if (!path.startsWith(ROOT)) return new Response(null, { status: 403 });
      try {
        return new Response(await Deno.readFile(path), {
          headers: { "content-type": "application/typescript" },
        });
      } catch {
        return new Response(null, { status: 404 });
      }
    },
  );
  const host = `127.0.0.1:${server.addr.port}`;
  const empty = await Deno.makeTempDir();
  const tree = await Deno.makeTempDir();
  try {
    // More than one block (1 MiB for gzip, 2 MiB for zstd), so that both Workers get some.
    const bytes = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) =>
      (i * 31 + (i >> 11)) & 0x7f
    );
    await Deno.writeFile(join(tree, "data.bin"), bytes);
    const script = `
      const oci = await import("http://${host}/mod.ts");
      const fallbacks = [];
      const digests = {};
      for (const [codec, file, name] of ${JSON.stringify(COMPRESSORS)}) {
        const make = (await import("http://${host}/src/layer/" + file))[name];
        const packed = ReadableStream.from([await Deno.readFile(${
      JSON.stringify(join(tree, "data.bin"))
    })])
          .pipeThrough(make({ workers: 2, onFallback: (reason) => fallbacks.push(reason) }));
        digests[codec] = oci.digestOf(new Uint8Array(await new Response(packed).arrayBuffer()));
      }
      const stage = await oci.openLayout(${
      JSON.stringify(join(empty, "stage"))
    });
      const layer = await oci.createLayer(${
      JSON.stringify(tree)
    }, stage, { mtime: 0 });
      console.log(JSON.stringify({ fallbacks, digests, layer: layer.compressedDigest }));
    `;
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        "--no-config",
        `--allow-import=${host}`,
        `--allow-read=${tree},${empty}`,
        `--allow-write=${empty}`,
        "--reload=http://" + host,
        script,
      ],
      cwd: empty,
      env: { NO_COLOR: "1" },
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const result = JSON.parse(new TextDecoder().decode(output.stdout));
    assert.deepEqual(result.fallbacks, []);
    const { createLayer } = await import("../src/layer/create_layer.ts");
    const { openLayout } = await import("../src/store/layout_store.ts");
    const { digestOf } = await import("../src/oci/digest.ts");
    for (const [codec, file, name] of COMPRESSORS) {
      const make: (options: { workers: number }) => TransformStream<
        Uint8Array,
        Uint8Array
      > = (await import(`../src/layer/${file}`))[name];
      const local = ReadableStream.from([bytes]).pipeThrough(
        make({ workers: 0 }),
      );
      assert.equal(
        result.digests[codec],
        digestOf(new Uint8Array(await new Response(local).arrayBuffer())),
        codec,
      );
    }
    const layer = await createLayer(
      tree,
      await openLayout(join(empty, "local")),
      { mtime: 0 },
    );
    assert.equal(result.layer, layer.compressedDigest);
  } finally {
    await Deno.remove(empty, { recursive: true });
    await Deno.remove(tree, { recursive: true });
  }
});
