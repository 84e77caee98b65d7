/**
 * The main job: everything oci does, on the embedded registry, with nothing else installed.
 * It starts the registry in-process on a free loopback port, packs `examples/tree` as a layer,
 * pushes a two-platform image with an index, copies it to a second repository (mounting blobs),
 * lists tags, pulls one platform back through the stage, verifies the files, and prints a
 * report.
 *
 * ```sh
 * deno task demo
 * ```
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import {
  copyImage,
  createLayer,
  createOpener,
  DigestStream,
  formatPlatform,
  formatReference,
  httpTransport,
  listTags,
  openLayout,
  parsePlatform,
  parseReference,
  pullImage,
  pushIndex,
  remoteStore,
  type Transport,
  withTag,
} from "../mod.ts";
import { serveRegistry } from "../src/server/mod.ts";

const TREE = fileURLToPath(new URL("./tree", import.meta.url));
const started = performance.now();
const work = await Deno.makeTempDir({ prefix: "oci-demo-" });

/** Counts requests by method and the bytes that went each way. */
const requests = new Map<string, number>();
let bytesUp = 0;
let bytesDown = 0;
const counting: Transport = async (request) => {
  requests.set(request.method, (requests.get(request.method) ?? 0) + 1);
  const response = await httpTransport(request);
  const length = Number(response.headers.get("content-length") ?? 0);
  if (request.method === "GET") bytesDown += length;
  return response;
};
const transport = createOpener({
  transport: counting,
  credentials: () => Promise.resolve(undefined),
});

async function hashTree(
  root: string,
  relative = "",
): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for await (const entry of Deno.readDir(`${root}/${relative}`)) {
    const path = relative ? `${relative}/${entry.name}` : entry.name;
    const info = await Deno.lstat(`${root}/${path}`);
    if (info.isDirectory) {
      for (const [k, v] of await hashTree(root, path)) found.set(k, v);
    } else if (info.isSymlink) {
      found.set(path, `-> ${await Deno.readLink(`${root}/${path}`)}`);
    } else {
      const hasher = new DigestStream();
      await (await Deno.open(`${root}/${path}`)).readable.pipeThrough(hasher)
        .pipeTo(new WritableStream());
      found.set(
        path,
        `${(info.mode! & 0o777).toString(8)} ${(await hasher.result).digest}`,
      );
    }
  }
  return found;
}

const short = (digest: string) => digest.slice(0, 19);
const lines: string[] = [];
const say = (line: string) => {
  lines.push(line);
  console.log(line);
};

try {
  await using registry = await serveRegistry();
  say(`Embedded registry   ${registry.url} (in memory)`);

  const stage = await openLayout(`${work}/stage`);
  const layer = await createLayer(TREE, stage);
  say(
    `Packed examples/tree  ${
      short(layer.compressedDigest)
    } (${layer.size} bytes gzip, diff_id ${short(layer.uncompressedDigest)})`,
  );

  const platforms = ["linux/amd64", "linux/arm64"].map(parsePlatform);
  const images = [];
  for (const platform of platforms) {
    const dir = `${work}/${platform.architecture}`;
    await Deno.mkdir(`${dir}/etc`, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/etc/platform`,
      `${formatPlatform(platform)}\n`,
    );
    images.push({
      layers: [layer, await createLayer(dir, stage)],
      platform,
      config: { Cmd: ["/bin/hello"] },
    });
  }
  const ref = parseReference(`${registry.host}/demo/app:v1`);
  const pushStart = performance.now();
  const index = await pushIndex(ref, images, { transport });
  const pushSeconds = (performance.now() - pushStart) / 1000;
  bytesUp = layer.size * 1 + images.reduce((n, i) => n + i.layers[1].size, 0);
  say(
    `Pushed              ${formatReference(ref)} index ${
      short(index.digest)
    } for ${platforms.map(formatPlatform).join(", ")} in ${
      pushSeconds.toFixed(2)
    }s`,
  );

  const mirror = parseReference(`${registry.host}/demo/mirror:v1`);
  const before = requests.get("POST") ?? 0;
  const copied = await copyImage(
    remoteStore(ref, { transport }),
    remoteStore(mirror, { transport }),
    "v1",
    {
      platform: "all",
    },
  );
  say(
    `Copied to           ${
      formatReference(mirror)
    }: ${copied.blobsCopied} blobs mounted with ${
      (requests.get("POST") ?? 0) - before
    } POSTs, no blob bytes sent`,
  );

  const tags = await listTags(withTag(mirror, "v1"), { transport });
  say(`Tags of demo/mirror ${tags.join(", ")}`);

  const out = `${work}/rootfs`;
  const pullStart = performance.now();
  const pulled = await pullImage(mirror, out, {
    transport,
    cache: stage,
    platform: platforms[1],
  });
  const pullSeconds = (performance.now() - pullStart) / 1000;
  say(
    `Pulled linux/arm64  ${
      short(pulled.descriptor.digest)
    } into a temp dir in ${
      pullSeconds.toFixed(2)
    }s (layers verified against diff_ids)`,
  );

  const expected = await hashTree(TREE);
  expected.set(
    "etc/platform",
    (await hashTree(`${work}/arm64`)).get("etc/platform")!,
  );
  const actual = await hashTree(out);
  const same = expected.size === actual.size &&
    [...expected].every(([path, value]) => actual.get(path) === value);
  if (!same) throw new Error("the pulled files differ from the pushed ones");
  say(`Verified            ${actual.size} files, modes and links identical`);

  const total = [...requests.values()].reduce((a, b) => a + b, 0);
  const seconds = (performance.now() - started) / 1000;
  say(
    `Requests            ${total} (${
      [...requests].map(([m, n]) => `${m} ${n}`).join(", ")
    }); ${bytesUp} bytes of layers pushed, ${bytesDown} bytes downloaded`,
  );
  say(`Done in ${seconds.toFixed(2)}s`);
} finally {
  await Deno.remove(work, { recursive: true });
}
