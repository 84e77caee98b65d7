// Issue 7, item 5: the embedded server under load. 50 concurrent clients push and pull
// overlapping images for 60 s (× OCI_RELIABILITY_SCALE) against `serveRegistry({ root })` running
// in a process of its own (tests/reliability/load_server.ts): no lost blob, no corrupted layout,
// no unhandled rejection, memory flat.
//
// The workload: 12 shared layers (16 KiB – 2 MiB, deterministic bytes) combined into 8 image
// variants (each layer is in several) and 4 indexes over pairs of them, pushed by many clients
// at once to the same 4 repositories × 4 tags (so the same blobs are uploaded concurrently, by
// every upload path: HEAD then POST+PUT, forced POST+PUT, single POST, PATCH chunks, mount; and
// the same tags are overwritten), copied within the registry (cross-repository mounts) to 2
// mirror repositories, pulled with every byte verified by digest (ranges compared with the
// source bytes), tags listed, and uploads started then cancelled.
//
// Legitimate races, which are not failures: a tag pulled before any push of it has finished may
// be unknown (404); a tag pulled while it is being overwritten may be any manifest whose push to
// it had started. Everything else is a failure: an error, a 5xx (even one a retry hid), a
// manifest nobody pushed there, a tag that disappears, a blob that does not verify.
//
// After the run, and the server's upload timeout (5 s here), so that the sessions clients
// abandoned mid-upload expire: no file under ROOT stays open in the server; then the server is
// stopped and the layout checked on disk: every file of ROOT/.blobs/sha256 hashes to its name, no
// temporary file is left there, ROOT/.uploads is empty (every upload session was finished,
// cancelled or expired, so a file there is a leak: an aborted single POST once left one), every
// repository is an OCI layout whose index.json parses and whose manifests, configs and layers all
// exist with their sizes. Then a new server on the same root serves every tag again, verified.
// Memory: the server's RSS (VmRSS, sampled every second) in the last third of the run may exceed
// the one in the first third (after a warm-up) by at most max(96 MiB, 50 %).
import assert from "node:assert/strict";
import { join } from "node:path";
import { blobOf, pseudoRandomBytes, type TestBlob } from "../support/images.ts";
import { blobExists, fetchBlob } from "../../src/store/remote/blobs.ts";
import {
  encodeManifest,
  type FetchedManifest,
  fetchManifest,
} from "../../src/store/remote/manifests.ts";
import { memoryStore } from "../../src/store/memory_store.ts";
import { copyBlobs } from "../../src/image/copy.ts";
import { bytesSource } from "../../src/transport/request_body.ts";
import { listTags } from "../../src/store/remote/tags.ts";
import {
  blobUrl,
  endpoint,
  type ImageReference,
  parseReference,
  uploadsUrl,
  withDigest,
  withTag,
} from "../../src/oci/reference.ts";
import { digestOf, digestOfFile } from "../../src/oci/digest.ts";
import { copyImage } from "../../src/image/copy.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { createOpener } from "../../src/transport/opener.ts";
import { httpTransport } from "../../src/transport/http_transport.ts";
import type { RetryEvent } from "../../src/transport/retry.ts";
import type { Transport } from "../../src/transport/request_body.ts";
import { RegistryError } from "../../src/transport/errors.ts";
import type {
  Descriptor,
  ImageIndex,
  ImageManifest,
} from "../../src/oci/manifest.ts";
import {
  isIndexMediaType,
  OCI_CONFIG_MEDIA_TYPE,
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "../../src/oci/media_types.ts";
import { reliabilityScale, reportSummary } from "./summary.ts";
import { seededRandom } from "../support/random.ts";

const CLIENTS = 50;
const SECONDS = 60 * reliabilityScale();
const MiB = 1024 * 1024;
/**
 * Allowed RSS growth from the first third to the last: max(96 MiB, 50 %). The allocator takes
 * ~40 s to plateau (a 180 s run: 180 → 186 MiB, V8 heapUsed 10–24 MB throughout), so a 15 s run
 * still sees ~45 MiB of warm-up; a leak of a few % of the GiBs moved breaks the bound.
 */
const RSS_GROWTH_MiB = 96;
const RSS_GROWTH_RATIO = 1.5;
/** The server drops upload sessions idle this long (the clients' abandoned ones). */
const UPLOAD_TIMEOUT_MS = 5000;

// ---------------------------------------------------------------------------------------------
// The content: shared layers, image variants over them, indexes over pairs of variants.

const LAYER_SIZES = [
  16 * 1024,
  24 * 1024,
  48 * 1024,
  96 * 1024,
  160 * 1024,
  256 * 1024,
  384 * 1024,
  512 * 1024,
  768 * 1024,
  1 * MiB,
  1.5 * MiB,
  2 * MiB,
];
const LAYERS = LAYER_SIZES.map((size, i) =>
  blobOf(pseudoRandomBytes(size, 7000 + i))
);

interface Variant {
  config: TestBlob;
  layers: TestBlob[];
  manifest: ImageManifest;
  digest: string;
}

const VARIANTS: Variant[] = Array.from({ length: 8 }, (_, v) => {
  const layers = [v, v + 1, v + 4, v + 7].map((i) => LAYERS[i % LAYERS.length]);
  const config = blobOf(
    new TextEncoder().encode(JSON.stringify({
      architecture: v % 2 === 0 ? "amd64" : "arm64",
      os: "linux",
      rootfs: {
        type: "layers",
        diff_ids: layers.map((l) => l.descriptor.digest),
      },
      config: { Env: [`VARIANT=${v}`] },
    })),
    OCI_CONFIG_MEDIA_TYPE,
  );
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    config: config.descriptor,
    layers: layers.map((l) => l.descriptor),
  };
  return { config, layers, manifest, digest: encodeManifest(manifest).digest };
});

const INDEXES: { index: ImageIndex; digest: string; parts: Variant[] }[] = [
  0,
  2,
  4,
  6,
].map((v) => {
  const parts = [VARIANTS[v], VARIANTS[v + 1]];
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: OCI_INDEX_MEDIA_TYPE,
    manifests: parts.map((p, i) => ({
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      digest: p.digest,
      size: encodeManifest(p.manifest).size,
      platform: { os: "linux", architecture: i === 0 ? "amd64" : "arm64" },
    })),
  };
  return { index, digest: encodeManifest(index).digest, parts };
});

/** Every blob's bytes by digest, to compare ranges with. */
const BLOBS = new Map<string, Uint8Array>(
  [...LAYERS, ...VARIANTS.map((v) => v.config)].map((
    b,
  ) => [b.descriptor.digest, b.bytes]),
);
const VARIANT_DIGESTS = new Set(VARIANTS.map((v) => v.digest));

const APPS = ["load/app0", "load/app1", "load/app2", "load/app3"];
const MIRRORS = ["load/mirror0", "load/mirror1"];
const MULTI = "load/multi";
const REPOSITORIES = [...APPS, ...MIRRORS, MULTI];
const TAGS = ["t0", "t1", "t2", "t3"];

// ---------------------------------------------------------------------------------------------
// Helpers.

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)];
}

/** Reads a verified blob stream to the end; returns its length. */
async function drain(stream: ReadableStream<Uint8Array>): Promise<number> {
  let size = 0;
  for await (const chunk of stream) size += chunk.byteLength;
  return size;
}

function isNotFound(error: unknown): boolean {
  return error instanceof RegistryError && error.status === 404;
}

/** The server in its own process. */
interface ServerProcess {
  host: string;
  pid: number;
  /** Closes its stdin, waits for it to exit; its exit code, unhandled count and stderr. */
  stop(): Promise<{ code: number; unhandled: number; stderr: string }>;
}

async function startServer(root: string): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./load_server.ts", import.meta.url).pathname,
      "--root",
      root,
      "--upload-timeout",
      String(UPLOAD_TIMEOUT_MS),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let buffered = "";
  const nextLine = async (): Promise<string | undefined> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) return undefined;
      buffered += value;
    }
    const at = buffered.indexOf("\n");
    const line = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return line;
  };
  const first = await nextLine();
  if (first === undefined) {
    await child.status;
    throw new Error(`the server did not start: ${await stderr}`);
  }
  const { host, pid } = JSON.parse(first) as { host: string; pid: number };
  return {
    host,
    pid,
    async stop() {
      await child.stdin.close();
      const last = await nextLine();
      while (await nextLine() !== undefined) { /* drain */ }
      const { code } = await child.status;
      const unhandled = last === undefined
        ? -1
        : (JSON.parse(last) as { unhandled: number }).unhandled;
      return { code, unhandled, stderr: await stderr };
    },
  };
}

/**
 * Reads a file of another process's /proc entry through a child (`cat`, `ls`): Deno reads
 * /proc/<pid>/… only with --allow-all, and the test runs with --allow-run instead.
 */
async function procText(command: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(command, {
    args,
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout);
}

async function rssKiB(pid: number): Promise<number | undefined> {
  const status = await procText("cat", [`/proc/${pid}/status`]);
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) : undefined;
}

/** How many files a process has open, and which of them are under `root`. */
async function openFiles(
  pid: number,
  root: string,
): Promise<{ count: number; underRoot: string[] }> {
  const lines = (await procText("ls", ["-l", `/proc/${pid}/fd`])).split("\n")
    .filter((line) => / -> /.test(line));
  const targets = lines.map((line) => line.slice(line.indexOf(" -> ") + 4));
  if (targets.length === 0) {
    throw new Error(`cannot list the open files of process ${pid}`);
  }
  return {
    count: targets.length,
    underRoot: targets.filter((target) => target.startsWith(root)),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// ---------------------------------------------------------------------------------------------
// The load.

/** What the clients did and saw. */
class Ledger {
  readonly operations = new Map<string, number>();
  readonly failures: string[] = [];
  /** Legitimate races seen: a tag pulled before any push of it finished. */
  notYet = 0;
  /** Upload sessions left to the server's timeout. */
  abandoned = 0;
  requests = 0;
  retries = 0;
  serverErrors = 0;
  bytesPulled = 0;
  bytesPushed = 0;
  /** Per `repo:tag`, the manifests whose push there has started. */
  readonly started = new Map<string, Set<string>>();
  /** Per `repo:tag`, when a push of it first finished (performance.now()). */
  readonly completed = new Map<string, number>();

  count(kind: string): void {
    this.operations.set(kind, (this.operations.get(kind) ?? 0) + 1);
  }

  fail(kind: string, error: unknown): void {
    const text = error instanceof Error
      ? `${error.name}: ${error.message}`
      : String(error);
    this.failures.push(`${kind}: ${text}`);
  }

  onRetry = (event: RetryEvent): void => {
    this.retries++;
    if (event.status !== undefined && event.status >= 500) {
      this.serverErrors++;
      this.failures.push(
        `retry after ${event.status} of ${event.request.method} ${event.request.url}`,
      );
    }
  };

  pushStarting(repository: string, tag: string, digest: string): void {
    const key = `${repository}:${tag}`;
    let set = this.started.get(key);
    if (set === undefined) this.started.set(key, set = new Set());
    set.add(digest);
  }

  pushDone(repository: string, tag: string): void {
    const key = `${repository}:${tag}`;
    if (!this.completed.has(key)) this.completed.set(key, performance.now());
  }

  /** Whether a tag whose pull began at `since` must exist. */
  mustExist(repository: string, tag: string, since: number): boolean {
    const at = this.completed.get(`${repository}:${tag}`);
    return at !== undefined && at < since;
  }

  /** Whether `digest` may be what `repo:tag` names. */
  validFor(repository: string, tag: string, digest: string): boolean {
    if (MIRRORS.includes(repository)) return VARIANT_DIGESTS.has(digest);
    return this.started.get(`${repository}:${tag}`)?.has(digest) ?? false;
  }
}

/** One client: its own opener, its own seeded choices. */
class Client {
  readonly transport: Transport;
  readonly random: () => number;

  constructor(
    readonly id: number,
    readonly host: string,
    readonly ledger: Ledger,
  ) {
    this.random = seededRandom(1000 + id);
    this.transport = createOpener({
      credentials: () => Promise.resolve(undefined),
      retry: { onRetry: ledger.onRetry, baseDelay: 50 },
      transport: (request) => {
        ledger.requests++;
        return httpTransport(request);
      },
    });
  }

  ref(repository: string): ImageReference {
    return parseReference(`${this.host}/${repository}`);
  }

  /** Uploads a blob by one of the upload paths, at random. */
  async upload(repository: string, blob: TestBlob): Promise<void> {
    const ref = this.ref(repository);
    const store = remoteStore(ref, { transport: this.transport });
    const source = bytesSource(blob.bytes);
    const mode = this.random();
    let sent = true;
    if (mode < 0.3) {
      // As a push does: HEAD first, and no upload when the registry has it.
      const from = memoryStore();
      await from.push(blob.descriptor, source);
      sent = (await copyBlobs(from, store, [blob.descriptor])).copied > 0;
    } else if (mode < 0.55) {
      await store.push(blob.descriptor, source);
    } else if (mode < 0.75) {
      await remoteStore(ref, {
        transport: this.transport,
        smallBlobSize: 4 * MiB,
      })
        .push(blob.descriptor, source);
    } else if (mode < 0.9) {
      await this.chunkedUpload(ref, blob);
    } else {
      const from = remoteStore(this.ref(pick(this.random, APPS)), {
        transport: this.transport,
      });
      // 201 when `from` has it (no bytes move), else the upload goes on with the bytes.
      sent = !(await store.mount(blob.descriptor, from, { fallback: source }));
    }
    if (sent) this.ledger.bytesPushed += blob.bytes.byteLength;
  }

  /** Pushes a manifest or index by tag, or by digest without one. */
  async putManifest(
    repository: string,
    document: ImageManifest | ImageIndex,
    tag?: string,
  ): Promise<Descriptor> {
    const { bytes, digest, size } = encodeManifest(document);
    const descriptor = { mediaType: document.mediaType!, digest, size };
    await remoteStore(this.ref(repository), { transport: this.transport })
      .push(descriptor, bytesSource(bytes), { tag });
    return descriptor;
  }

  /** POST, two PATCH chunks with Content-Range, then the PUT with the digest. */
  async chunkedUpload(ref: ImageReference, blob: TestBlob): Promise<void> {
    const send = async (request: Request, expected: number) => {
      const response = await this.transport(request);
      const text = await response.text();
      if (response.status !== expected) {
        throw new Error(
          `${request.method} ${request.url}: ${response.status} ${text}`,
        );
      }
      return response;
    };
    let response = await send(
      new Request(uploadsUrl(ref), { method: "POST" }),
      202,
    );
    const { bytes } = blob;
    const middle = Math.floor(bytes.byteLength / 3);
    for (const [start, end] of [[0, middle], [middle, bytes.byteLength - 1]]) {
      if (end <= start) continue;
      response = await send(
        new Request(endpoint(ref, response.headers.get("location")!), {
          method: "PATCH",
          headers: {
            "content-type": "application/octet-stream",
            "content-range": `${start}-${end - 1}`,
          },
          body: bytes.slice(start, end),
        }),
        202,
      );
    }
    const location = endpoint(ref, response.headers.get("location")!);
    await send(
      new Request(
        `${location}${
          location.includes("?") ? "&" : "?"
        }digest=${blob.descriptor.digest}`,
        {
          method: "PUT",
          headers: { "content-type": "application/octet-stream" },
          body: bytes.slice(bytes.byteLength - 1),
        },
      ),
      201,
    );
  }

  async pushVariant(): Promise<void> {
    const variant = pick(this.random, VARIANTS);
    const repository = pick(this.random, APPS);
    const tag = pick(this.random, TAGS);
    for (const blob of [variant.config, ...variant.layers]) {
      await this.upload(repository, blob);
    }
    this.ledger.pushStarting(repository, tag, variant.digest);
    const descriptor = await this.putManifest(
      repository,
      variant.manifest,
      tag,
    );
    assert.equal(descriptor.digest, variant.digest);
    this.ledger.pushDone(repository, tag);
  }

  async pushTestIndex(): Promise<void> {
    const { index, digest, parts } = pick(this.random, INDEXES);
    const tag = pick(this.random, TAGS);
    for (const variant of parts) {
      for (const blob of [variant.config, ...variant.layers]) {
        await this.upload(MULTI, blob);
      }
      await this.putManifest(MULTI, variant.manifest);
    }
    this.ledger.pushStarting(MULTI, tag, digest);
    await this.putManifest(MULTI, index, tag);
    this.ledger.pushDone(MULTI, tag);
  }

  /** Pulls a tag and every manifest and blob under it, verified. */
  async pull(
    repository: string,
    tag: string,
    rangeShare = 0.2,
  ): Promise<"pulled" | "absent"> {
    const since = performance.now();
    const ref = withTag(this.ref(repository), tag);
    let top: FetchedManifest;
    try {
      top = await fetchManifest(ref, { transport: this.transport });
    } catch (error) {
      if (isNotFound(error) && !this.ledger.mustExist(repository, tag, since)) {
        this.ledger.notYet++;
        return "absent";
      }
      throw error;
    }
    const digest = top.descriptor.digest;
    assert.equal(digestOf(top.bytes), digest);
    if (!this.ledger.validFor(repository, tag, digest)) {
      throw new Error(`${repository}:${tag} is ${digest}, which nobody pushed`);
    }
    const manifests: FetchedManifest[] = [];
    if (isIndexMediaType(top.descriptor.mediaType)) {
      for (const entry of (top.document as ImageIndex).manifests) {
        const child = await fetchManifest(withDigest(ref, entry.digest), {
          transport: this.transport,
        });
        assert.ok(VARIANT_DIGESTS.has(child.descriptor.digest));
        manifests.push(child);
      }
    } else {
      manifests.push(top);
    }
    for (const manifest of manifests) {
      const document = manifest.document as ImageManifest;
      for (const blob of [document.config, ...document.layers]) {
        await this.pullBlob(ref, blob);
        if (this.random() < rangeShare) await this.rangeRead(ref, blob);
      }
    }
    return "pulled";
  }

  async pullBlob(ref: ImageReference, blob: Descriptor): Promise<void> {
    const stream = await fetchBlob(ref, blob.digest, {
      transport: this.transport,
      size: blob.size,
    });
    this.ledger.bytesPulled += await drain(stream);
  }

  /** A `Range` GET, compared with the bytes pushed. */
  async rangeRead(ref: ImageReference, blob: Descriptor): Promise<void> {
    const start = Math.floor(this.random() * blob.size);
    const end = Math.min(
      blob.size - 1,
      start + Math.floor(this.random() * 300_000),
    );
    const response = await this.transport(
      new Request(blobUrl(ref, blob.digest), {
        headers: { range: `bytes=${start}-${end}` },
      }),
    );
    const bytes = new Uint8Array(await response.arrayBuffer());
    assert.equal(response.status, 206, `range of ${blob.digest}`);
    assert.deepEqual(
      bytes,
      BLOBS.get(blob.digest)!.subarray(start, end + 1),
      `range ${start}-${end} of ${blob.digest}`,
    );
  }

  /** Copies a tag of an app repository to a mirror: within one registry, so blobs are mounted. */
  async copyToMirror(): Promise<void> {
    const source = pick(this.random, APPS);
    const target = pick(this.random, MIRRORS);
    const tag = pick(this.random, TAGS);
    const since = performance.now();
    let result;
    try {
      result = await copyImage(
        remoteStore(this.ref(source), { transport: this.transport }),
        remoteStore(this.ref(target), { transport: this.transport }),
        tag,
        { platform: "all" },
      );
    } catch (error) {
      if (isNotFound(error) && !this.ledger.mustExist(source, tag, since)) {
        this.ledger.notYet++;
        return;
      }
      throw error;
    }
    assert.ok(VARIANT_DIGESTS.has(result.descriptor.digest));
    this.ledger.pushDone(target, tag);
  }

  /** Mounts a shared layer from one app repository into another; then it must be there. */
  async mountLayer(): Promise<void> {
    const layer = pick(this.random, LAYERS);
    const from = pick(this.random, APPS);
    const to = pick(this.random, APPS.filter((r) => r !== from));
    await remoteStore(this.ref(to), { transport: this.transport }).mount(
      layer.descriptor,
      remoteStore(this.ref(from), { transport: this.transport }),
      { fallback: bytesSource(layer.bytes) },
    );
    assert.ok(
      await blobExists(this.ref(to), layer.descriptor.digest, {
        transport: this.transport,
      }),
    );
  }

  /** Tags listed are known ones; tags pushed before the listing are in it. */
  async listRepositoryTags(): Promise<void> {
    const repository = pick(this.random, REPOSITORIES);
    const since = performance.now();
    let tags: string[];
    try {
      tags = await listTags(this.ref(repository), {
        transport: this.transport,
      });
    } catch (error) {
      if (
        isNotFound(error) &&
        !TAGS.some((t) => this.ledger.mustExist(repository, t, since))
      ) {
        this.ledger.notYet++;
        return;
      }
      throw error;
    }
    for (const tag of tags) {
      assert.ok(TAGS.includes(tag), `unknown tag ${tag} in ${repository}`);
    }
    for (const tag of TAGS) {
      if (this.ledger.mustExist(repository, tag, since)) {
        assert.ok(tags.includes(tag), `${repository}:${tag} is not listed`);
      }
    }
  }

  /** Starts an upload, sends a chunk, cancels it: then the session is gone. */
  async cancelledUpload(): Promise<void> {
    const ref = this.ref(pick(this.random, APPS));
    const started = await this.transport(
      new Request(uploadsUrl(ref), { method: "POST" }),
    );
    await started.body?.cancel();
    assert.equal(started.status, 202);
    const location = endpoint(ref, started.headers.get("location")!);
    const patch = await this.transport(
      new Request(location, {
        method: "PATCH",
        headers: { "content-type": "application/octet-stream" },
        body: pseudoRandomBytes(50_000, this.id) as Uint8Array<ArrayBuffer>,
      }),
    );
    await patch.body?.cancel();
    assert.equal(patch.status, 202);
    const cancel = await this.transport(
      new Request(location, { method: "DELETE" }),
    );
    await cancel.body?.cancel();
    assert.equal(cancel.status, 204);
    const status = await this.transport(new Request(location));
    await status.body?.cancel();
    assert.equal(status.status, 404);
  }

  /**
   * A client that goes away mid-upload: of a single POST (the server drops the bytes), or of a
   * PATCH to a session, which it then cancels (DELETE: 204, then the session is unknown) or
   * abandons (the server drops it after UPLOAD_TIMEOUT_MS).
   */
  async abortedUpload(): Promise<void> {
    const ref = this.ref(pick(this.random, APPS));
    const single = this.random() < 0.5;
    let url = uploadsUrl(ref, digestOf(`never ${this.id}`));
    if (!single) {
      const started = await this.transport(
        new Request(uploadsUrl(ref), { method: "POST" }),
      );
      await started.body?.cancel();
      assert.equal(started.status, 202);
      url = endpoint(ref, started.headers.get("location")!);
    }
    const abort = new AbortController();
    const halfSent = Promise.withResolvers<void>();
    const aborted = new Promise<void>((resolve) =>
      abort.signal.addEventListener("abort", () => resolve())
    );
    let chunks = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (chunks++ < 4) {
          controller.enqueue(pseudoRandomBytes(64 * 1024, chunks));
          return;
        }
        halfSent.resolve();
        await aborted;
      },
    });
    const sending = fetch(url, {
      method: single ? "POST" : "PATCH",
      headers: { "content-type": "application/octet-stream" },
      body,
      signal: abort.signal,
    }).then(
      async (response) => {
        await response.body?.cancel();
        return response.status;
      },
      (error: unknown) => error,
    );
    await Promise.race([halfSent.promise, sending]);
    await new Promise((resolve) => setTimeout(resolve, 10));
    abort.abort();
    const outcome = await sending;
    assert.ok(
      outcome instanceof Error,
      `the server answered ${outcome} to an unfinished upload`,
    );
    if (!single && this.random() < 0.3) {
      this.ledger.abandoned++;
    } else if (!single) {
      const cancel = await this.transport(
        new Request(url, { method: "DELETE" }),
      );
      await cancel.body?.cancel();
      assert.equal(cancel.status, 204);
      const status = await this.transport(new Request(url));
      await status.body?.cancel();
      assert.equal(status.status, 404);
    }
  }

  async run(deadline: number): Promise<void> {
    const operations: [number, string, () => Promise<unknown>][] = [
      [30, "push", () => this.pushVariant()],
      [5, "push-index", () => this.pushTestIndex()],
      [
        35,
        "pull",
        () =>
          this.pull(
            pick(this.random, REPOSITORIES),
            pick(this.random, TAGS),
          ),
      ],
      [10, "copy-mount", () => this.copyToMirror()],
      [5, "mount", () => this.mountLayer()],
      [10, "tags", () => this.listRepositoryTags()],
      [5, "cancelled-upload", () => this.cancelledUpload()],
      [3, "aborted-upload", () => this.abortedUpload()],
    ];
    const total = operations.reduce((sum, [weight]) => sum + weight, 0);
    while (performance.now() < deadline) {
      let roll = this.random() * total;
      const [, kind, operation] = operations.find(([weight]) =>
        (roll -= weight) < 0
      )!;
      try {
        await operation();
        this.ledger.count(kind);
      } catch (error) {
        this.ledger.fail(kind, error);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The layout check, offline.

interface LayoutReport {
  blobs: number;
  corrupt: string[];
  leftovers: string[];
  missing: string[];
  repositories: string[];
}

async function checkLayout(root: string): Promise<LayoutReport> {
  const report: LayoutReport = {
    blobs: 0,
    corrupt: [],
    leftovers: [],
    missing: [],
    repositories: [],
  };
  const blobsDir = join(root, ".blobs", "sha256");
  const sizes = new Map<string, number>();
  for await (const entry of Deno.readDir(blobsDir)) {
    const path = join(blobsDir, entry.name);
    if (!entry.isFile || !/^[0-9a-f]{64}$/.test(entry.name)) {
      report.leftovers.push(path);
      continue;
    }
    report.blobs++;
    const { digest, size } = await digestOfFile(path);
    if (digest !== `sha256:${entry.name}`) report.corrupt.push(path);
    sizes.set(`sha256:${entry.name}`, size);
  }
  for await (const entry of Deno.readDir(join(root, ".blobs"))) {
    if (entry.name !== "sha256") {
      report.leftovers.push(join(root, ".blobs", entry.name));
    }
  }
  for await (const entry of Deno.readDir(join(root, ".uploads"))) {
    report.leftovers.push(join(root, ".uploads", entry.name));
  }

  const need = (what: string, descriptor: Descriptor) => {
    const size = sizes.get(descriptor.digest);
    if (size !== descriptor.size) {
      report.missing.push(
        `${what}: ${descriptor.digest} ${
          size === undefined ? "is missing" : `has ${size} bytes`
        }`,
      );
      return false;
    }
    return true;
  };
  const readBlob = async (digest: string) =>
    JSON.parse(
      await Deno.readTextFile(join(blobsDir, digest.slice("sha256:".length))),
    );
  for (const repository of REPOSITORIES) {
    const dir = join(root, repository);
    const indexPath = join(dir, "index.json");
    let index: ImageIndex;
    try {
      index = JSON.parse(await Deno.readTextFile(indexPath));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      report.missing.push(`${indexPath}: ${error}`);
      continue;
    }
    report.repositories.push(repository);
    const layout = JSON.parse(
      await Deno.readTextFile(join(dir, "oci-layout")),
    );
    assert.equal(layout.imageLayoutVersion, "1.0.0");
    assert.ok((await Deno.stat(join(dir, "blobs"))).isDirectory);
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.includes(".tmp-")) {
        report.leftovers.push(join(dir, entry.name));
      }
    }
    const visit = async (what: string, descriptor: Descriptor) => {
      if (!need(what, descriptor)) return;
      const document = await readBlob(descriptor.digest);
      if (isIndexMediaType(descriptor.mediaType)) {
        for (const child of (document as ImageIndex).manifests) {
          await visit(`${what} → ${child.digest}`, child);
        }
      } else {
        const manifest = document as ImageManifest;
        for (const blob of [manifest.config, ...manifest.layers]) {
          need(`${what} → ${blob.digest}`, blob);
        }
      }
    };
    for (const descriptor of index.manifests) {
      await visit(`${repository} ${descriptor.digest}`, descriptor);
    }
  }
  return report;
}

// ---------------------------------------------------------------------------------------------

Deno.test({
  name:
    `load: ${CLIENTS} clients push and pull overlapping images for ${SECONDS} s; layout intact, memory flat`,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "oci-load-" });
    try {
      const ledger = new Ledger();
      const server = await startServer(root);
      const rss: { at: number; kib: number }[] = [];
      const filesAtStart = await openFiles(server.pid, root);
      const startedAt = performance.now();
      const deadline = startedAt + SECONDS * 1000;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const kib = await rssKiB(server.pid);
          if (kib !== undefined) {
            rss.push({ at: (performance.now() - startedAt) / 1000, kib });
          }
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      })();
      await Promise.all(
        Array.from(
          { length: CLIENTS },
          (_, id) => new Client(id, server.host, ledger).run(deadline),
        ),
      );
      const seconds = (performance.now() - startedAt) / 1000;
      sampling = false;
      await sampler;
      // Past the upload timeout, starting an upload drops the abandoned sessions.
      await new Promise((resolve) =>
        setTimeout(resolve, UPLOAD_TIMEOUT_MS + 500)
      );
      await new Client(CLIENTS + 1, server.host, ledger).cancelledUpload();
      // Every upload was finished, cancelled or expired and every read is done: no file under
      // the root stays open (a handler of an aborted request may still be closing: some grace).
      let filesAtEnd = await openFiles(server.pid, root);
      for (let i = 0; i < 50 && filesAtEnd.underRoot.length > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        filesAtEnd = await openFiles(server.pid, root);
      }
      const stopped = await server.stop();

      // The layout on disk.
      const layout = await checkLayout(root);

      // A new server on the same root serves every tag that was pushed, verified.
      const again = await startServer(root);
      const checker = new Client(CLIENTS, again.host, ledger);
      let pulledAfterRestart = 0;
      const afterRestart: string[] = [];
      for (const repository of REPOSITORIES) {
        const expected = TAGS.filter((t) =>
          ledger.completed.has(`${repository}:${t}`)
        );
        try {
          const tags = await listTags(checker.ref(repository), {
            transport: checker.transport,
          });
          assert.deepEqual(tags, expected, `tags of ${repository}`);
          for (const tag of tags) {
            assert.equal(await checker.pull(repository, tag, 0), "pulled");
            pulledAfterRestart++;
          }
        } catch (error) {
          afterRestart.push(`${repository}: ${error}`);
        }
      }
      const stoppedAgain = await again.stop();

      // Memory: first third after warm-up against the last third.
      const third = seconds / 3;
      const early = rss.filter((s) => s.at >= third / 2 && s.at <= third)
        .map((s) => s.kib);
      const late = rss.filter((s) => s.at >= 2 * third).map((s) => s.kib);
      const rssStartMiB = median(early) / 1024;
      const rssEndMiB = median(late) / 1024;
      const rssPeakMiB = Math.max(...rss.map((s) => s.kib)) / 1024;
      const operations = [...ledger.operations.values()].reduce(
        (a, b) => a + b,
        0,
      );
      const round = (n: number) => Math.round(n * 10) / 10;
      console.log(
        [
          `operations: ${
            JSON.stringify(Object.fromEntries(ledger.operations))
          }`,
          `requests: ${ledger.requests}, pulled ${
            round(ledger.bytesPulled / MiB)
          } MiB, pushed ${round(ledger.bytesPushed / MiB)} MiB`,
          `tags not yet pushed when pulled (legitimate): ${ledger.notYet}, upload sessions abandoned: ${ledger.abandoned}`,
          `retries: ${ledger.retries}, 5xx: ${ledger.serverErrors}`,
          `RSS MiB: first third ${round(rssStartMiB)}, last third ${
            round(rssEndMiB)
          }, peak ${round(rssPeakMiB)}, samples ${
            rss.map((s) => Math.round(s.kib / 1024)).join(" ")
          }`,
          `open files: ${filesAtStart.count} before, ${filesAtEnd.count} after the load (${filesAtEnd.underRoot.length} under the root)`,
          `layout: ${layout.blobs} blobs, repositories ${
            layout.repositories.join(" ")
          }; pulled ${pulledAfterRestart} tags after a restart`,
        ].join("\n"),
      );
      for (const failure of ledger.failures.slice(0, 20)) {
        console.error(`failure: ${failure}`);
      }

      await reportSummary("load", {
        operations,
        faults: 0,
        retries: ledger.retries,
        failures: ledger.failures.length + afterRestart.length +
          layout.missing.length,
        corrupt: layout.corrupt.length,
        leaked: 0,
        extra: {
          clients: CLIENTS,
          seconds: round(seconds),
          requests: ledger.requests,
          rssStartMiB: round(rssStartMiB),
          rssEndMiB: round(rssEndMiB),
          rssPeakMiB: round(rssPeakMiB),
        },
      });

      assert.deepEqual(ledger.failures.slice(0, 20), [], "client failures");
      assert.equal(stopped.unhandled, 0, stopped.stderr);
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.equal(stoppedAgain.unhandled, 0, stoppedAgain.stderr);
      assert.equal(stoppedAgain.code, 0, stoppedAgain.stderr);
      assert.deepEqual(
        layout.corrupt,
        [],
        "blobs that do not hash to their name",
      );
      assert.deepEqual(layout.missing, [], "lost blobs");
      assert.deepEqual(layout.leftovers, [], "temporary files left");
      assert.deepEqual(filesAtEnd.underRoot, [], "files the server keeps open");
      assert.deepEqual(afterRestart, [], "pulls after a restart");
      assert.ok(pulledAfterRestart > 0, "something was pushed");
      for (const kind of ["push", "push-index", "pull", "copy-mount", "tags"]) {
        assert.ok(
          (ledger.operations.get(kind) ?? 0) > 0,
          `no ${kind} succeeded`,
        );
      }
      assert.ok(early.length > 0 && late.length > 0, "RSS was sampled");
      assert.ok(
        rssEndMiB <= Math.max(
          rssStartMiB + RSS_GROWTH_MiB,
          rssStartMiB * RSS_GROWTH_RATIO,
        ),
        `server RSS grew from ${round(rssStartMiB)} MiB to ${
          round(rssEndMiB)
        } MiB`,
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
