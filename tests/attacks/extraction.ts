// Attacks of the issue "Safety" on this part of the stack (contract: tests/support/attacks.ts):
// crafted layers. Class 1: names and whiteouts that reach outside the target (or the target
// itself). Class 6: gzip and zstd bombs, zstd windows and oversized headers that make extraction
// hold memory.
import { fileURLToPath } from "node:url";
import { constants, createZstdCompress } from "node:zlib";
import type { Attack } from "../support/attacks.ts";
import {
  extractLayer,
  LayerFormatError,
  UnsafeEntryError,
} from "../../src/layer/extract_layer.ts";
import { compress } from "../../src/layer/compression.ts";
import { serveRegistry } from "../../src/server/serve.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { createOpener } from "../../src/transport/opener.ts";
import { pullImage } from "../../src/image/pull.ts";
import { digestOf } from "../../src/oci/digest.ts";
import {
  OCI_CONFIG_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "../../src/oci/media_types.ts";
import { blobOf, pseudoRandomBytes, pushTestImage } from "../support/images.ts";
import {
  gzip,
  layerStream,
  makeSandbox,
  type RawEntry,
  rawEntry,
  rawTar,
  ustarBlock,
} from "../support/layers.ts";

const MiB = 1024 * 1024;

// ---- class 1 ------------------------------------------------------------------------------

/** What an escaped extraction looks like, for the attack's error. */
async function outcome(
  sandbox: Awaited<ReturnType<typeof makeSandbox>>,
  run: () => Promise<unknown>,
): Promise<{ error: unknown; missing: string[] }> {
  let error: unknown;
  try {
    await run();
  } catch (e) {
    error = e;
  }
  return { error, missing: await sandbox.missing() };
}

/** Extracts `layers` in order into a sandboxed target; the last must be refused, nothing lost. */
async function refusedLayer(...layers: RawEntry[][]): Promise<void> {
  await using sandbox = await makeSandbox();
  const { error, missing } = await outcome(sandbox, async () => {
    for (const entries of layers) {
      await extractLayer(layerStream(entries), sandbox.target);
    }
  });
  if (missing.length > 0 || !(error instanceof UnsafeEntryError)) {
    throw new Error(
      `the layer was ${
        error === undefined ? "extracted" : `refused with ${error}`
      }; sentinels gone: ${missing.join(", ") || "none"}`,
    );
  }
}

/** The issue's attack, end to end: a registry serves an image whose layer holds `.wh..`. */
async function pullHostileImage(entries: RawEntry[]): Promise<void> {
  await using sandbox = await makeSandbox();
  await using registry = await serveRegistry({});
  const tar = rawTar(entries);
  const layer = blobOf(gzip(tar));
  const config = blobOf(
    new TextEncoder().encode(JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [digestOf(tar)] },
    })),
    OCI_CONFIG_MEDIA_TYPE,
  );
  const transport = createOpener({
    credentials: () => Promise.resolve(undefined),
  });
  const ref = parseReference(`${registry.host}/hostile/whiteout:v1`);
  await pushTestImage(ref, {
    platform: { os: "linux", architecture: "amd64" },
    config,
    layers: [layer],
    manifest: {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      config: config.descriptor,
      layers: [layer.descriptor],
    },
  }, { transport });
  const { error, missing } = await outcome(
    sandbox,
    () =>
      pullImage(ref, sandbox.target, {
        cache: `${sandbox.root}/stage`,
        transport,
        platform: { os: "linux", architecture: "amd64" },
      }),
  );
  if (missing.length > 0 || !(error instanceof UnsafeEntryError)) {
    throw new Error(
      `the pull ${
        error === undefined ? "succeeded" : `failed with ${error}`
      }; sentinels gone: ${missing.join(", ") || "none"}`,
    );
  }
}

const LONG_DIR = "d".repeat(120);

const class1: Attack[] = [
  {
    class: 1,
    name:
      "a pulled layer's whiteout `.wh...` (`..`) removes the target's parent",
    attempt: () => pullHostileImage([{ name: ".wh..." }]),
  },
  {
    class: 1,
    name: "whiteout `.wh..` (`.`) removes the target itself",
    attempt: () => refusedLayer([{ name: ".wh.." }]),
  },
  {
    class: 1,
    name:
      "whiteout `.wh.` (nothing after the prefix) removes the target itself",
    attempt: () => refusedLayer([{ name: ".wh." }]),
  },
  {
    class: 1,
    name: "whiteout `sub/.wh...` in a subdirectory removes the target",
    attempt: () =>
      refusedLayer([
        { name: "sub/", type: "5", mode: 0o755 },
        { name: "sub/.wh..." },
      ]),
  },
  {
    class: 1,
    name:
      "whiteout `<long dir>/.wh...` spelled in a pax path removes the target",
    attempt: () =>
      refusedLayer([{ name: "x", pax: { path: `${LONG_DIR}/.wh...` } }]),
  },
  {
    class: 1,
    name: "whiteout `./.wh...` spelled in a GNU long name removes the parent",
    attempt: () => refusedLayer([{ name: "x", gnuLongName: "./.wh..." }]),
  },
  {
    class: 1,
    name: "whiteout `sub/.wh..` removes the directory it sits in",
    attempt: () =>
      refusedLayer([
        { name: "sub/", type: "5", mode: 0o755 },
        { name: "sub/keep", body: "keep" },
        { name: "sub/.wh.." },
      ]),
  },
  {
    class: 1,
    name: "a hardlink to its own name deletes the file it names",
    attempt: () =>
      refusedLayer([{ name: "lower", type: "1", linkname: "./lower" }]),
  },
];

// ---- class 6 ------------------------------------------------------------------------------

/** How much peak RSS an extraction may add, whatever the layer inflates to. */
const PEAK_GROWTH_LIMIT_MIB = 64;
const PEAK_SCRIPT = fileURLToPath(
  new URL("../support/extract_peak.ts", import.meta.url),
);
const REPO = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Writes an archive made of `parts`, compressed (produced lazily, so the bomb is never in
 * memory).
 */
async function writeLayer(
  path: string,
  parts: () => Iterable<Uint8Array>,
  compression: "gzip" | "zstd",
): Promise<void> {
  const iterator = parts()[Symbol.iterator]();
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      const { value, done } = iterator.next();
      if (done) {
        controller.enqueue(new Uint8Array(1024));
        controller.close();
      } else controller.enqueue(value);
    },
  });
  using file = await Deno.open(path, { write: true, create: true });
  await compress(source, compression).pipeTo(file.writable);
}

/** `size` bytes of zeros in chunks of at most 1 MiB (one shared buffer). */
function* zeros(size: number): Iterable<Uint8Array> {
  const chunk = new Uint8Array(MiB);
  for (let left = size; left > 0; left -= chunk.byteLength) {
    yield left >= chunk.byteLength ? chunk : chunk.subarray(0, left);
  }
}

/** A file entry's header and padded body, the body given as chunks. */
function* fileOf(
  name: string,
  body: Iterable<Uint8Array>,
  size: number,
): Iterable<Uint8Array> {
  yield ustarBlock({ name, size });
  yield* body;
  yield new Uint8Array((512 - (size % 512)) % 512);
}

/**
 * Extracts the layer `parts` make in a child process (after a warm-up layer) and checks that
 * its peak RSS grew by less than {@linkcode PEAK_GROWTH_LIMIT_MIB}, and how it ended.
 */
async function boundedExtraction(
  parts: () => Iterable<Uint8Array>,
  expect: { refused?: RegExp; compression?: "gzip" | "zstd" },
): Promise<void> {
  const compression = expect.compression ?? "gzip";
  const work = await Deno.makeTempDir({ prefix: "oci-bomb-" });
  try {
    await writeLayer(
      `${work}/warmup.tar.gz`,
      () => fileOf("w", zeros(MiB), MiB),
      compression,
    );
    await writeLayer(`${work}/layer.tar.gz`, parts, compression);
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        // Writing /proc/self/clear_refs (to reset the peak RSS) needs all permissions.
        "--allow-all",
        PEAK_SCRIPT,
        `${work}/warmup.tar.gz`,
        `${work}/layer.tar.gz`,
        `${work}/target`,
        compression,
      ],
      cwd: REPO,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!output.success) {
      throw new Error(
        `the extraction process failed: ${
          new TextDecoder().decode(output.stderr)
        }`,
      );
    }
    const result: {
      before: number;
      after: number;
      error?: { name: string; message: string };
    } = JSON.parse(new TextDecoder().decode(output.stdout));
    const growthMiB = (result.after - result.before) / 1024;
    const problems: string[] = [];
    if (growthMiB >= PEAK_GROWTH_LIMIT_MIB) {
      problems.push(
        `peak RSS grew by ${
          growthMiB.toFixed(0)
        } MiB (limit ${PEAK_GROWTH_LIMIT_MIB} MiB)`,
      );
    }
    if (expect.refused === undefined && result.error !== undefined) {
      problems.push(`it failed: ${result.error.name}: ${result.error.message}`);
    }
    if (
      expect.refused !== undefined &&
      (result.error?.name !== LayerFormatError.name ||
        !expect.refused.test(result.error.message))
    ) {
      problems.push(
        `it was not refused with a LayerFormatError matching ${expect.refused}: ${
          result.error
            ? `${result.error.name}: ${result.error.message}`
            : "it succeeded"
        }`,
      );
    }
    if (problems.length > 0) throw new Error(problems.join("; "));
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

/** A pax global header of `size` bytes setting one key. */
function* globalPax(key: string, size: number): Iterable<Uint8Array> {
  const head = `${size} ${key}=`;
  const valueBytes = size - head.length - 1;
  const record = new Uint8Array(size);
  record.set(new TextEncoder().encode(head));
  record.fill(0x61, head.length, head.length + valueBytes);
  record[size - 1] = 0x0a;
  yield ustarBlock({ name: "pax_global_header", type: "g", size });
  yield record;
  yield new Uint8Array((512 - (size % 512)) % 512);
}

/** The bombs, in gzip (whose ratio is at most ~1000) and zstd (~32000: 8 KiB per 256 MiB). */
function bombs(compression: "gzip" | "zstd"): Attack[] {
  const layer = compression === "gzip" ? "layer" : "zstd layer";
  return [
    {
      class: 6,
      name: compression === "gzip"
        ? "a 256 KiB layer holding one 256 MiB file of zeros"
        : "an 8 KiB zstd layer holding one 256 MiB file of zeros",
      attempt: () =>
        boundedExtraction(
          () => fileOf("zeros", zeros(256 * MiB), 256 * MiB),
          { compression },
        ),
    },
    {
      class: 6,
      name: `a ${layer} of 4096 files of 64 KiB of zeros`,
      attempt: () =>
        boundedExtraction(function* () {
          for (let i = 0; i < 4096; i++) {
            yield* fileOf(`f${i}`, zeros(64 * 1024), 64 * 1024);
          }
        }, { compression }),
    },
    {
      class: 6,
      name: compression === "gzip"
        ? "runs of zeros right after incompressible stretches"
        : "zstd: runs of zeros right after incompressible stretches",
      attempt: () =>
        boundedExtraction(function* () {
          for (let i = 0; i < 16; i++) {
            const noise = pseudoRandomBytes(64 * 1024, i + 1);
            yield* fileOf(`noise${i}`, [noise], noise.byteLength);
            yield* fileOf(`zeros${i}`, zeros(16 * MiB), 16 * MiB);
          }
        }, { compression }),
    },
  ];
}

/**
 * A zstd layer whose frame header asks for a 2 GiB window (a decoder that granted it would fill
 * it as the layer inflates): refused before any output.
 */
async function hugeWindow(): Promise<void> {
  await using sandbox = await makeSandbox();
  const encoder = createZstdCompress({
    params: { [constants.ZSTD_c_windowLog]: 31 },
  });
  const parts: Uint8Array<ArrayBuffer>[] = [];
  encoder.on("data", (part: Uint8Array<ArrayBuffer>) => parts.push(part));
  // Two writes with a flush between: the size is unknown up front, so the window stays.
  encoder.write(ustarBlock({ name: "zeros", size: 64 * MiB }));
  await new Promise((resolve) => encoder.flush(() => resolve(undefined)));
  const ended = new Promise((resolve) => encoder.on("end", resolve));
  encoder.end(new Uint8Array(MiB));
  await ended;
  const { error, missing } = await outcome(
    sandbox,
    () =>
      extractLayer(new Blob(parts).stream(), sandbox.target, {
        compression: "zstd",
      }),
  );
  if (
    missing.length > 0 || !(error instanceof LayerFormatError) ||
    !/window larger than 32 MiB/.test(error.message)
  ) {
    throw new Error(
      `the layer was ${
        error === undefined ? "extracted" : `refused with ${error}`
      }; sentinels gone: ${missing.join(", ") || "none"}`,
    );
  }
}

const class6: Attack[] = [
  ...bombs("gzip"),
  ...bombs("zstd"),
  {
    class: 6,
    name: "a zstd layer whose frame asks for a 2 GiB window",
    attempt: hugeWindow,
  },
  {
    class: 6,
    name: "24 pax global headers of 6 MiB, each setting another key",
    attempt: () =>
      boundedExtraction(function* () {
        for (let i = 0; i < 24; i++) yield* globalPax(`k${i}`, 6 * MiB);
        yield* fileOf("after", [], 0);
      }, { refused: /pax global header of \d+ bytes is larger than/ }),
  },
  {
    class: 6,
    name: "a GNU long name of 2 MiB",
    attempt: () =>
      boundedExtraction(function* () {
        yield* rawEntry({ name: "x", gnuLongName: "a/".repeat(MiB) });
      }, { refused: /GNU long-name header of \d+ bytes is larger than/ }),
  },
];

/** The attacks this module contributes to tests/reliability/attacks_test.ts. */
export const attacks: Attack[] = [...class1, ...class6];
