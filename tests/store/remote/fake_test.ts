// Registry behaviours a real server will not produce on demand, with scripted handlers.
import assert from "node:assert/strict";
import { DigestMismatchError, digestOf } from "../../../src/oci/digest.ts";
import { parseReference, withDigest } from "../../../src/oci/reference.ts";
import { fetchBlob } from "../../../src/store/remote/blobs.ts";
import {
  encodeManifest,
  fetchManifest,
} from "../../../src/store/remote/manifests.ts";
import { remoteStore } from "../../../src/store/remote_store.ts";
import { memoryStore } from "../../../src/store/memory_store.ts";
import { copyBlobs } from "../../../src/image/copy.ts";
import { resolveImage } from "../../../src/image/resolve.ts";
import {
  type BlobSource,
  bytesSource,
  fileSource,
} from "../../../src/transport/request_body.ts";
import {
  IndexDepthError,
  MAX_MANIFEST_SIZE,
} from "../../../src/oci/parse_manifest.ts";
import { listTags } from "../../../src/store/remote/tags.ts";
import { openLayout } from "../../../src/store/layout_store.ts";
import { createOpener } from "../../../src/transport/opener.ts";
import type { Transport } from "../../../src/transport/request_body.ts";
import {
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "../../../src/oci/media_types.ts";

const REF = parseReference("127.0.0.1:5000/app:v1");

/** An opener over a scripted handler (no socket), recording each request with its body. */
function scripted(
  handler: (request: Request, body: Uint8Array) => Response | Promise<Response>,
) {
  const log: {
    method: string;
    url: string;
    body: Uint8Array;
    headers: Headers;
  }[] = [];
  const transport: Transport = async (request) => {
    const body = new Uint8Array(await request.arrayBuffer());
    log.push({
      method: request.method,
      url: request.url,
      body,
      headers: request.headers,
    });
    return await handler(request, body);
  };
  return {
    log,
    transport: createOpener({
      transport,
      credentials: () => Promise.resolve(undefined),
      retry: false,
    }),
  };
}

/** A registry without the blob that starts every upload at `location` and accepts the PUT. */
function uploadingRegistry(location: string) {
  return scripted((request) => {
    if (request.method === "HEAD") return new Response(null, { status: 404 });
    if (request.method === "POST") {
      return new Response(null, { status: 202, headers: { location } });
    }
    return new Response(null, { status: 201 });
  });
}

/** A blob's descriptor. */
function blob(bytes: Uint8Array) {
  return {
    mediaType: "application/octet-stream",
    digest: digestOf(bytes),
    size: bytes.byteLength,
  };
}

/** Pushes bytes into REF's repository as the remote store does (one upload session). */
function pushBlob(
  transport: Transport,
  bytes: Uint8Array,
  options: { smallBlobSize?: number; source?: BlobSource; digest?: string } =
    {},
) {
  const store = remoteStore(REF, {
    transport,
    smallBlobSize: options.smallBlobSize,
  });
  return store.push(
    { ...blob(bytes), digest: options.digest ?? digestOf(bytes) },
    options.source ?? bytesSource(bytes),
  );
}

Deno.test("remoteStore().push() completes in one POST when the registry accepts ?digest=", async () => {
  const bytes = new TextEncoder().encode("small");
  const digest = digestOf(bytes);
  const { log, transport } = scripted((request) =>
    request.method === "HEAD"
      ? new Response(null, { status: 404 })
      : new Response(null, {
        status: 201,
        headers: { "docker-content-digest": digest },
      })
  );
  // Through the copy: HEAD first (the copy's question), then the store's one POST.
  const source = memoryStore();
  await source.push(blob(bytes), bytesSource(bytes));
  await copyBlobs(
    source,
    remoteStore(REF, { transport, smallBlobSize: 100 }),
    [blob(bytes)],
  );
  assert.deepEqual(
    log.map((l) =>
      `${l.method} ${new URL(l.url).pathname}${new URL(l.url).search}`
    ),
    [
      `HEAD /v2/app/blobs/${digest}`,
      `POST /v2/app/blobs/uploads/?digest=${digest}`,
    ],
  );
  assert.equal(new TextDecoder().decode(log[1].body), "small");
  assert.equal(log[1].headers.get("content-type"), "application/octet-stream");
});

for (
  const [kind, location] of [
    ["relative", "uploads/abc?_state=s%2Bt"],
    ["host-rooted", "/v2/app/blobs/uploads/abc?_state=s%2Bt"],
    ["absolute", "http://127.0.0.1:5000/v2/app/blobs/uploads/abc?_state=s%2Bt"],
  ]
) {
  Deno.test(`remoteStore().push() PUTs to a ${kind} Location, keeping its query and adding digest=`, async () => {
    const bytes = new TextEncoder().encode("payload");
    const digest = digestOf(bytes);
    const { log, transport } = uploadingRegistry(location);
    await pushBlob(transport, bytes);
    const put = log.find((l) => l.method === "PUT")!;
    const base = kind === "relative"
      ? "http://127.0.0.1:5000/v2/uploads/abc"
      : "http://127.0.0.1:5000/v2/app/blobs/uploads/abc";
    assert.equal(
      put.url,
      `${base}?_state=s%2Bt&digest=${encodeURIComponent(digest)}`,
    );
    assert.equal(new TextDecoder().decode(put.body), "payload");
  });
}

Deno.test("remoteStore().push() falls back to POST+PUT when a single POST answers 202", async () => {
  const bytes = new TextEncoder().encode("tiny");
  const { log, transport } = uploadingRegistry("/v2/app/blobs/uploads/u1");
  await pushBlob(transport, bytes, { smallBlobSize: 1024 });
  assert.deepEqual(log.map((l) => l.method), ["POST", "PUT"]);
  assert.equal(new TextDecoder().decode(log[1].body), "tiny");
});

Deno.test("remoteStore().mount() falls back to the upload when a mount answers 202", async () => {
  const bytes = new TextEncoder().encode("layer");
  const digest = digestOf(bytes);
  const { log, transport } = uploadingRegistry("/v2/app/blobs/uploads/m1");
  const from = remoteStore(parseReference("127.0.0.1:5000/other/repo"), {
    transport,
  });
  assert.equal(
    await remoteStore(REF, { transport }).mount(blob(bytes), from, {
      fallback: bytesSource(bytes),
    }),
    false,
    "uploaded, not mounted",
  );
  assert.deepEqual(log.map((l) => `${l.method} ${new URL(l.url).search}`), [
    `POST ?mount=${digest}&from=other%2Frepo`,
    `PUT ?digest=${encodeURIComponent(digest)}`,
  ]);
});

Deno.test("remoteStore().push() refuses a Docker-Content-Digest that differs from what was sent", async () => {
  const bytes = new TextEncoder().encode("x");
  const { transport } = scripted((request) =>
    request.method === "HEAD"
      ? new Response(null, { status: 404 })
      : request.method === "POST"
      ? new Response(null, {
        status: 202,
        headers: { location: "/v2/app/blobs/uploads/1" },
      })
      : new Response(null, {
        status: 201,
        headers: { "docker-content-digest": digestOf("y") },
      })
  );
  await assert.rejects(
    pushBlob(transport, bytes),
    /stored the blob as sha256:/,
  );
});

Deno.test("remoteStore().push() reports a missing Location clearly", async () => {
  const { transport } = scripted((request) =>
    request.method === "HEAD"
      ? new Response(null, { status: 404 })
      : new Response(null, { status: 202 })
  );
  await assert.rejects(
    pushBlob(transport, new Uint8Array([1])),
    /sent no Location header/,
  );
});

Deno.test("remoteStore().push() carries Content-Length and no chunked encoding on a socket", async () => {
  const seen: Headers[] = [];
  await using server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
  }, async (request) => {
    await request.arrayBuffer();
    seen.push(request.headers);
    if (request.method === "HEAD") return new Response(null, { status: 404 });
    if (request.method === "POST") {
      return new Response(null, {
        status: 202,
        headers: { location: "/v2/app/blobs/uploads/1" },
      });
    }
    return new Response(null, { status: 201 });
  });
  const ref = parseReference(`127.0.0.1:${server.addr.port}/app`);
  const bytes = new Uint8Array(3 << 20).fill(7);
  const path = await Deno.makeTempFile();
  await Deno.writeFile(path, bytes);
  try {
    const transport = createOpener({
      credentials: () => Promise.resolve(undefined),
    });
    await remoteStore(ref, { transport }).push(
      blob(bytes),
      await fileSource(path),
    );
  } finally {
    await Deno.remove(path);
  }
  const put = seen[1];
  assert.equal(put.get("content-length"), String(3 << 20));
  assert.equal(put.get("transfer-encoding"), null);
  assert.equal(
    seen[0].get("content-length"),
    "0",
    "the POST that opens the upload says 0",
  );
});

Deno.test("fetchBlob() errors on a digest or size mismatch", async () => {
  const { transport } = scripted(() => new Response("tampered"));
  const digest = digestOf("original");
  await assert.rejects(
    new Response(await fetchBlob(REF, digest, { transport })).arrayBuffer(),
    DigestMismatchError,
  );
  await assert.rejects(
    new Response(
      await fetchBlob(REF, digestOf("tampered"), { transport, size: 3 }),
    ).arrayBuffer(),
    /expected 3 bytes, got/,
  );
});

Deno.test("copyBlobs() into a layout keeps nothing, not even a temporary file, when the download is wrong", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const layout = await openLayout(dir);
    const { transport } = scripted(() => new Response("tampered bytes"));
    const descriptor = {
      mediaType: "application/octet-stream",
      digest: digestOf("original bytes"),
      size: 14,
    };
    await assert.rejects(
      copyBlobs(remoteStore(REF, { transport }), layout, [descriptor]),
      DigestMismatchError,
    );
    const left: string[] = [];
    for await (const entry of Deno.readDir(`${dir}/blobs/sha256`)) {
      left.push(entry.name);
    }
    assert.deepEqual(left, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("copyBlobs() into a layout reuses a good copy with no request and replaces a damaged one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const layout = await openLayout(dir);
    const { log, transport } = scripted(() => new Response("good bytes"));
    const descriptor = {
      mediaType: "application/octet-stream",
      digest: digestOf("good bytes"),
      size: 10,
    };
    const source = remoteStore(REF, { transport });
    const stage = () => copyBlobs(source, layout, [descriptor]);
    const path = layout.blobPath(descriptor.digest);
    await stage();
    await stage();
    assert.equal(log.length, 1, "the second call made no request");
    await Deno.writeTextFile(path, "truncated");
    await stage();
    assert.equal(log.length, 2, "a wrong-sized copy is fetched again");
    assert.equal(await Deno.readTextFile(path), "good bytes");
    await Deno.writeTextFile(path, "bad  bytes");
    await stage();
    assert.equal(log.length, 2, "same size: not re-hashed unless asked");
    assert.equal(
      await layout.hasBlob(descriptor.digest, { size: 10, verify: true }),
      false,
      "verify re-hashes and drops the damaged copy",
    );
    await stage();
    assert.equal(log.length, 3, "then it is fetched again");
    assert.equal(await Deno.readTextFile(path), "good bytes");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetchManifest() refuses manifests over 4 MiB, with or without Content-Length", async () => {
  const huge = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    padding: "x".repeat(MAX_MANIFEST_SIZE),
  });
  const declared = scripted(() =>
    new Response(huge, { headers: { "content-type": OCI_MANIFEST_MEDIA_TYPE } })
  );
  await assert.rejects(
    fetchManifest(REF, { transport: declared.transport }),
    /larger than 4194304 bytes/,
  );
  const streamed = scripted(() =>
    new Response(new Response(huge).body, {
      headers: { "content-type": OCI_MANIFEST_MEDIA_TYPE },
    })
  );
  await assert.rejects(
    fetchManifest(REF, { transport: streamed.transport }),
    /larger than 4194304 bytes/,
  );
});

/** A chain of nested indexes over one manifest, each pointing to the next by a correct digest. */
function nestedIndexes(levels: number) {
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    config: {
      mediaType: "application/vnd.oci.empty.v1+json",
      digest: digestOf("{}"),
      size: 2,
    },
    layers: [],
  });
  const byDigest = new Map<string, [string, string]>([[digestOf(manifest), [
    manifest,
    OCI_MANIFEST_MEDIA_TYPE,
  ]]]);
  let top = manifest;
  let topType = OCI_MANIFEST_MEDIA_TYPE;
  for (let i = 0; i < levels; i++) {
    top = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX_MEDIA_TYPE,
      manifests: [{
        mediaType: topType,
        digest: digestOf(top),
        size: top.length,
        platform: { os: "linux", architecture: "amd64" },
      }],
    });
    topType = OCI_INDEX_MEDIA_TYPE;
    byDigest.set(digestOf(top), [top, topType]);
  }
  return scripted((request) => {
    const last = new URL(request.url).pathname.split("/").pop()!;
    const [body, type] = byDigest.get(last) ?? [top, topType];
    return new Response(body, { headers: { "content-type": type } });
  });
}

Deno.test("resolveImage() follows nested indexes up to maxDepth, then stops with a depth error", async () => {
  const platform = { os: "linux", architecture: "amd64" };
  const deep = nestedIndexes(4);
  await assert.rejects(
    resolveImage(remoteStore(REF, { transport: deep.transport }), "v1", {
      platform,
    }),
    (error: unknown) =>
      error instanceof IndexDepthError &&
      /maximum depth 3 of nested indexes/.test(error.message),
  );
  assert.equal(deep.log.length, 4, "the tag and three levels, no more");
  const resolved = await resolveImage(
    remoteStore(REF, { transport: nestedIndexes(4).transport }),
    "v1",
    { platform, maxDepth: 4 },
  );
  assert.equal(resolved.manifest.descriptor.mediaType, OCI_MANIFEST_MEDIA_TYPE);
});

Deno.test("resolveImage() cannot loop on an index that points to itself: the digest check stops it", async () => {
  // A registry that answers every request with the same index, whose entry names some digest:
  // following the entry gets bytes that do not hash to it.
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX_MEDIA_TYPE,
    manifests: [{
      mediaType: OCI_INDEX_MEDIA_TYPE,
      digest: digestOf("itself"),
      size: 10,
      platform: { os: "linux", architecture: "amd64" },
    }],
  });
  const { log, transport } = scripted(() =>
    new Response(index, { headers: { "content-type": OCI_INDEX_MEDIA_TYPE } })
  );
  await assert.rejects(
    resolveImage(remoteStore(REF, { transport }), "v1", {
      platform: { os: "linux", architecture: "amd64" },
      attempts: 1,
    }),
    DigestMismatchError,
  );
  assert.equal(log.length, 2);
  // Bytes that do not match are read again (they may have been damaged on the way), a bounded
  // number of times.
  log.length = 0;
  await assert.rejects(
    resolveImage(remoteStore(REF, { transport }), "v1", {
      platform: { os: "linux", architecture: "amd64" },
      attempts: 3,
    }),
    DigestMismatchError,
  );
  assert.equal(log.length, 4);
});

Deno.test("fetchManifest() refuses unknown content types, non-JSON and a wrong digest", async () => {
  const cases: [Response, RegExp][] = [
    [
      new Response("{}", { headers: { "content-type": "text/html" } }),
      /unknown manifest content type "text\/html"/,
    ],
    [
      new Response("not json", {
        headers: { "content-type": OCI_MANIFEST_MEDIA_TYPE },
      }),
      /not valid JSON/,
    ],
    [
      new Response("[1]", {
        headers: { "content-type": OCI_MANIFEST_MEDIA_TYPE },
      }),
      /not a JSON object/,
    ],
    [
      new Response(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST_MEDIA_TYPE,
        }),
        {
          headers: { "content-type": OCI_MANIFEST_MEDIA_TYPE },
        },
      ),
      /no config descriptor or no layers array/,
    ],
    [
      new Response(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_INDEX_MEDIA_TYPE,
          manifests: [],
        }),
        {
          headers: { "content-type": OCI_MANIFEST_MEDIA_TYPE },
        },
      ),
      /contradicts the document's mediaType/,
    ],
  ];
  for (const [response, message] of cases) {
    const { transport } = scripted(() => response);
    await assert.rejects(fetchManifest(REF, { transport }), message);
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    config: {},
    layers: [],
  });
  const { transport } = scripted(() =>
    new Response(manifest, {
      headers: { "content-type": OCI_MANIFEST_MEDIA_TYPE },
    })
  );
  await assert.rejects(
    fetchManifest(withDigest(REF, digestOf("other")), { transport }),
    DigestMismatchError,
  );
});

Deno.test("remoteStore().push() of a manifest sends its exact bytes with its media type, by tag or by digest", async () => {
  const { log, transport } = scripted(() =>
    new Response(null, { status: 201 })
  );
  const manifest = {
    schemaVersion: 2 as const,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    config: {
      mediaType: "application/vnd.oci.empty.v1+json",
      digest: digestOf("{}"),
      size: 2,
    },
    layers: [],
  };
  const { bytes, digest, size } = encodeManifest(manifest);
  const descriptor = { mediaType: OCI_MANIFEST_MEDIA_TYPE, digest, size };
  const store = remoteStore(REF, { transport });
  await store.push(descriptor, bytesSource(bytes), { tag: "v1" });
  const sent = new TextDecoder().decode(log[0].body);
  assert.equal(sent, JSON.stringify(manifest));
  assert.equal(descriptor.digest, digestOf(sent));
  assert.equal(descriptor.size, log[0].body.byteLength);
  assert.equal(log[0].headers.get("content-type"), OCI_MANIFEST_MEDIA_TYPE);
  assert.ok(log[0].url.endsWith("/manifests/v1"));
  await store.push(descriptor, bytesSource(bytes));
  assert.ok(log[1].url.endsWith(`/manifests/${descriptor.digest}`));
});

Deno.test("listTags() follows Link pagination with n=2 to the end", async () => {
  const all = ["a", "b", "c", "d", "e"];
  const { log, transport } = scripted((request) => {
    const url = new URL(request.url);
    const n = Number(url.searchParams.get("n") ?? 100);
    const last = url.searchParams.get("last");
    const start = last === null ? 0 : all.indexOf(last) + 1;
    const page = all.slice(start, start + n);
    const headers = new Headers();
    if (start + n < all.length) {
      headers.set(
        "link",
        `</v2/app/tags/list?n=${n}&last=${page.at(-1)}>; rel="next"`,
      );
    }
    return Response.json({ name: "app", tags: page }, { headers });
  });
  assert.deepEqual(await listTags(REF, { transport, pageSize: 2 }), all);
  assert.deepEqual(log.map((l) => new URL(l.url).search), [
    "?n=2",
    "?n=2&last=b",
    "?n=2&last=d",
  ]);
});

Deno.test("listTags() stops a Link that never ends", async () => {
  const { transport } = scripted(() =>
    Response.json({ tags: ["x"] }, {
      headers: { link: '</v2/app/tags/list?last=x>; rel="next"' },
    })
  );
  await assert.rejects(
    listTags(REF, { transport, maxPages: 5 }),
    /more than 5 pages/,
  );
});
