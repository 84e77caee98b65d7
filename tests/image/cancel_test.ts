// AbortSignal in the library, with a 300 MiB blob on the embedded registry over a real socket:
// an abort in the middle of a download (fetchBlob, copyBlobs into a stage, pullImage, copyImage)
// or an upload (remoteStore().push, pushImage, copyImage between registries) rejects with the abort's reason at once,
// the server hands out (or reads) only a few more MiB, nothing partial is left in the stage or
// the target, and the upload session is DELETEd.
import assert from "node:assert/strict";
import {
  BIG_SIZE,
  type BigBlobRegistry,
  makeBigFile,
  startBigBlobRegistry,
  temporariesUnder,
} from "../support/big_blob.ts";
import { listFilesIfAny } from "../support/files.ts";
import { fetchBlob } from "../../src/store/remote/blobs.ts";
import { openLayout } from "../../src/store/layout_store.ts";
import { pullImage } from "../../src/image/pull.ts";
import { pushImage } from "../../src/image/push.ts";
import { copyBlobs, copyImage } from "../../src/image/copy.ts";
import { bytesSource, fileSource } from "../../src/transport/request_body.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { layoutStore } from "../../src/store/layout_store.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { createOpener } from "../../src/transport/opener.ts";
import {
  createBufferFiller,
  readAtMost,
  tapBytes,
} from "../../src/io/bytes.ts";
import { idleTimeoutBody } from "../../src/transport/timeouts.ts";

/** Where the abort lands: this much of the blob has moved. */
const ABORT_AFTER = 32 << 20;
/** What may still move after the abort: socket buffers and a chunk or two in flight. */
const AFTER_ABORT_BOUND = 16 << 20;

const transport = createOpener({
  credentials: () => Promise.resolve(undefined),
});
const platform = { os: "linux", architecture: "amd64" };

/** The latencies measured, printed at the end for the notes. */
const latencies: Record<string, number> = {};

/**
 * Runs `operation` with a signal that aborts (with a reason of our own) once `trigger`
 * resolves, and checks that it rejects with exactly that reason. Returns the counters at the
 * abort and the time from the abort to the rejection.
 */
async function abortMidway(
  registry: BigBlobRegistry,
  trigger: (registry: BigBlobRegistry) => Promise<void>,
  operation: (signal: AbortSignal) => Promise<unknown>,
): Promise<{ sentAtAbort: number; receivedAtAbort: number; ms: number }> {
  const controller = new AbortController();
  const reason = new Error("stopped by the test");
  let abortedAt = 0;
  let sentAtAbort = 0;
  let receivedAtAbort = 0;
  trigger(registry).then(() => {
    sentAtAbort = registry.sent;
    receivedAtAbort = registry.received;
    abortedAt = performance.now();
    controller.abort(reason);
  });
  const error = await operation(controller.signal).then(
    () => assert.fail("the operation finished: the abort came too late"),
    (error) => error,
  );
  const ms = performance.now() - abortedAt;
  assert.ok(abortedAt > 0, `it failed before the abort: ${error?.stack}`);
  assert.equal(error, reason, `rejected with ${error?.stack ?? error}`);
  // Whatever is still in flight lands within a moment; nothing more is asked for.
  await new Promise((resolve) => setTimeout(resolve, 300));
  return { sentAtAbort, receivedAtAbort, ms };
}

const downloading = (registry: BigBlobRegistry) =>
  registry.whenSent(ABORT_AFTER);
const uploading = (registry: BigBlobRegistry) =>
  registry.whenReceived(ABORT_AFTER);

function assertSentBounded(registry: BigBlobRegistry, at: number): void {
  const after = registry.sent - at;
  assert.ok(
    after < AFTER_ABORT_BOUND,
    `the server sent ${after >> 20} MiB after the abort`,
  );
  assert.ok(registry.sent < BIG_SIZE, "the whole blob was sent");
}

function assertReceivedBounded(registry: BigBlobRegistry, at: number): void {
  const after = registry.received - at;
  assert.ok(
    after < AFTER_ABORT_BOUND,
    `the server read ${after >> 20} MiB after the abort`,
  );
  assert.ok(registry.received < BIG_SIZE, "the whole blob was uploaded");
}

/** Every upload session the registry started and did not finish was DELETEd, and only those. */
function assertSessionsDeleted(registry: BigBlobRegistry): void {
  const unfinished = registry.unfinishedSessions();
  assert.ok(unfinished.length > 0, "no upload session was left unfinished");
  const deleted = registry.uploadDeletes().map((r) => r.path);
  assert.deepEqual(deleted, unfinished);
}

async function assertNoTemporaries(...roots: string[]): Promise<void> {
  for (const root of roots) {
    assert.deepEqual(await temporariesUnder(root), [], `in ${root}`);
  }
}

Deno.test("fetchBlob: an abort mid-download errors the stream with the reason and closes the connection", async () => {
  await using registry = await startBigBlobRegistry();
  const ref = parseReference(`${registry.host}/${registry.source}`);
  const { sentAtAbort, ms } = await abortMidway(
    registry,
    downloading,
    async (signal) => {
      const stream = await fetchBlob(ref, registry.blob.digest, {
        transport,
        signal,
        size: BIG_SIZE,
      });
      const filler = createBufferFiller(stream);
      let buffer = new Uint8Array(1 << 20);
      for (;;) {
        const filled = await filler.fill(buffer);
        if (filled.byteLength === 0) return;
        buffer = new Uint8Array(filled.buffer);
      }
    },
  );
  latencies["fetchBlob (download)"] = ms;
  assertSentBounded(registry, sentAtAbort);
});

Deno.test("fetchBlob: an abort without a reason rejects with an AbortError", async () => {
  await using registry = await startBigBlobRegistry();
  const ref = parseReference(`${registry.host}/${registry.source}`);
  const controller = new AbortController();
  const stream = await fetchBlob(ref, registry.blob.digest, {
    transport,
    signal: controller.signal,
    size: BIG_SIZE,
  });
  registry.whenSent(ABORT_AFTER).then(() => controller.abort());
  const error = await new Response(stream).arrayBuffer().catch((e) => e);
  assert.equal(error?.name, "AbortError");
  assert.ok(registry.sent < BIG_SIZE);
});

Deno.test("fetchBlob and remoteStore().push with a signal aborted already send nothing", async () => {
  await using registry = await startBigBlobRegistry();
  const ref = parseReference(`${registry.host}/${registry.source}`);
  const reason = new Error("aborted before");
  const signal = AbortSignal.abort(reason);
  await assert.rejects(
    fetchBlob(ref, registry.blob.digest, { transport, signal }),
    (error) => error === reason,
  );
  await assert.rejects(
    remoteStore(ref, { transport }).push(
      registry.blob,
      bytesSource(new Uint8Array(8)),
      { signal },
    ),
    (error) => error === reason,
  );
  assert.deepEqual(registry.requests, []);
});

Deno.test("copyBlobs into a stage: an abort mid-download leaves neither the blob nor a temporary file in the stage", async () => {
  await using registry = await startBigBlobRegistry();
  const dir = await Deno.makeTempDir({ prefix: "oci-cancel-" });
  try {
    const stage = await openLayout(`${dir}/stage`);
    const ref = parseReference(`${registry.host}/${registry.source}`);
    const { sentAtAbort, ms } = await abortMidway(
      registry,
      downloading,
      (signal) =>
        copyBlobs(remoteStore(ref, { transport }), stage, [registry.blob], {
          signal,
        }),
    );
    latencies["copyBlobs → stage (download)"] = ms;
    assertSentBounded(registry, sentAtAbort);
    await assertNoTemporaries(dir);
    assert.equal(await stage.hasBlob(registry.blob.digest), false);
    // One download only: an abort is not retried.
    assert.equal(
      registry.requests.filter((r) => r.method === "GET").length,
      1,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pullImage: an abort mid-layer leaves nothing partial in the stage or the target, and no tag", async () => {
  await using registry = await startBigBlobRegistry();
  const dir = await Deno.makeTempDir({ prefix: "oci-cancel-" });
  try {
    const ref = parseReference(`${registry.host}/${registry.source}:v1`);
    const { sentAtAbort, ms } = await abortMidway(
      registry,
      downloading,
      (signal) =>
        pullImage(ref, `${dir}/rootfs`, {
          cache: `${dir}/stage`,
          transport,
          signal,
          platform,
        }),
    );
    latencies["pullImage (download)"] = ms;
    assertSentBounded(registry, sentAtAbort);
    await assertNoTemporaries(dir);
    assert.deepEqual(await listFilesIfAny(`${dir}/rootfs`), []);
    const stage = await openLayout(`${dir}/stage`);
    assert.equal(await stage.hasBlob(registry.blob.digest), false);
    assert.equal(await stage.tagged("v1"), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("copyImage registry → layout: an abort mid-blob leaves nothing partial in the target layout", async () => {
  await using registry = await startBigBlobRegistry();
  const dir = await Deno.makeTempDir({ prefix: "oci-cancel-" });
  try {
    const source = remoteStore(
      parseReference(`${registry.host}/${registry.source}`),
      { transport },
    );
    const target = await layoutStore(`${dir}/target`);
    const { sentAtAbort, ms } = await abortMidway(
      registry,
      downloading,
      (signal) => copyImage(source, target, "v1", { signal, platform }),
    );
    latencies["copyImage → layout (download)"] = ms;
    assertSentBounded(registry, sentAtAbort);
    await assertNoTemporaries(dir);
    const layout = await openLayout(`${dir}/target`);
    assert.equal(await layout.hasBlob(registry.blob.digest), false);
    assert.equal(await layout.tagged("v1"), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("copyImage registry → registry: an abort mid-blob stops download and upload and DELETEs the upload session", async () => {
  await using registry = await startBigBlobRegistry();
  const source = remoteStore(
    parseReference(`${registry.host}/${registry.source}`),
    { transport },
  );
  // Another registry's view of the same server: no mount, the bytes stream through us.
  const target = remoteStore(
    parseReference(`localhost:${registry.host.split(":")[1]}/big/copy`),
    { transport },
  );
  const { sentAtAbort, receivedAtAbort, ms } = await abortMidway(
    registry,
    uploading,
    (signal) => copyImage(source, target, "v1", { signal, platform }),
  );
  latencies["copyImage → registry (upload)"] = ms;
  assertSentBounded(registry, sentAtAbort);
  assertReceivedBounded(registry, receivedAtAbort);
  assertSessionsDeleted(registry);
  assert.ok(
    !registry.requests.some((r) =>
      r.method === "PUT" && r.path.includes("/manifests/")
    ),
    "a manifest was pushed",
  );
});

Deno.test("remoteStore().push: an abort mid-upload stops reading the file and DELETEs the upload session", async () => {
  await using registry = await startBigBlobRegistry();
  const dir = await Deno.makeTempDir({ prefix: "oci-cancel-" });
  try {
    const path = await makeBigFile(dir);
    const ref = parseReference(`${registry.host}/big/target`);
    const { receivedAtAbort, ms } = await abortMidway(
      registry,
      uploading,
      async (signal) =>
        remoteStore(ref, { transport }).push(
          registry.blob,
          await fileSource(path),
          { signal },
        ),
    );
    latencies["remoteStore().push (upload)"] = ms;
    assertReceivedBounded(registry, receivedAtAbort);
    assertSessionsDeleted(registry);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pushImage: an abort mid-layer DELETEs the upload session and pushes no config or manifest", async () => {
  await using registry = await startBigBlobRegistry();
  const dir = await Deno.makeTempDir({ prefix: "oci-cancel-" });
  try {
    const path = await makeBigFile(dir);
    const ref = parseReference(`${registry.host}/big/pushed:v1`);
    const layer = {
      path,
      compressedDigest: registry.blob.digest,
      uncompressedDigest: registry.blob.digest,
      size: BIG_SIZE,
      compression: "gzip" as const,
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
    };
    const { receivedAtAbort, ms } = await abortMidway(
      registry,
      uploading,
      (signal) =>
        pushImage(ref, { layers: [layer], transport, signal, platform }),
    );
    latencies["pushImage (upload)"] = ms;
    assertReceivedBounded(registry, receivedAtAbort);
    assertSessionsDeleted(registry);
    assert.equal(registry.sessions.length, 1, "only the layer's session");
    assert.ok(
      !registry.requests.some((r) => r.path.includes("/manifests/")),
      "a manifest was pushed",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A stream that never ends, and a promise of the reason it was cancelled with. */
function endless(): {
  stream: ReadableStream<Uint8Array>;
  cancelled: Promise<unknown>;
} {
  const { promise, resolve } = Promise.withResolvers<unknown>();
  let stopped = false;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      await new Promise((r) => setTimeout(r, 1));
      if (!stopped) controller.enqueue(new Uint8Array(1024));
    },
    cancel(reason) {
      stopped = true;
      resolve(reason);
    },
  });
  return { stream, cancelled: promise };
}

for (
  const [name, wrap] of [
    [
      "createBufferFiller",
      (s: ReadableStream<Uint8Array>, signal: AbortSignal) =>
        createBufferFiller(s, { signal }).fill(new Uint8Array(1)),
    ],
    [
      "tapBytes",
      (s: ReadableStream<Uint8Array>, signal: AbortSignal) =>
        tapBytes(s, () => {}, { signal }).getReader({ mode: "byob" }).read(
          new Uint8Array(1),
        ),
    ],
    [
      "readAtMost",
      (s: ReadableStream<Uint8Array>, signal: AbortSignal) =>
        readAtMost(s, 1 << 30, signal).then(() => {}),
    ],
    [
      "idleTimeoutBody",
      (s: ReadableStream<Uint8Array>, signal: AbortSignal) =>
        idleTimeoutBody(s, { idle: 0, onStall: () => 0, signal }).getReader()
          .read(),
    ],
  ] as const
) {
  Deno.test(`${name}: an abort cancels the source with the reason, also when no read is waiting`, async () => {
    // A read waiting.
    const waiting = endless();
    const controller = new AbortController();
    const reading =
      (wrap(waiting.stream, controller.signal) as Promise<unknown>)
        .catch((e) => e);
    const reason = new Error("stop");
    controller.abort(reason);
    assert.equal(await waiting.cancelled, reason);
    assert.equal(await reading, reason);
    // readAtMost reads to the end: it always has a read waiting.
    if (name === "readAtMost") return;
    // No read waiting: the reader did one read and then looks elsewhere.
    const idle = endless();
    const later = new AbortController();
    await (wrap(idle.stream, later.signal) as Promise<unknown>).catch(() => {});
    later.abort(reason);
    assert.equal(await idle.cancelled, reason);
  });
}

Deno.test("cancel latencies (library)", () => {
  console.log(
    Object.entries(latencies).map(([name, ms]) =>
      `${name}: ${ms.toFixed(1)} ms`
    ).join("; "),
  );
});
