// Conformance of the embedded registry to the distribution spec's endpoints (end-1 … end-13) and
// its MUST statements, called in-process for both storages; bad input gets the right 4xx.
import assert from "node:assert/strict";
import { createRegistry } from "../src/server/handler.ts";
import { memoryStorage } from "../src/server/memory_storage.ts";
import { layoutStorage } from "../src/server/layout_storage.ts";
import type { RegistryStorage } from "../src/server/storage.ts";
import { digestOf } from "../src/reference/digest.ts";
import {
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "../src/image/media_types.ts";

const BASE = "http://registry.test";
const EMPTY = "{}";
const EMPTY_DIGEST = digestOf(EMPTY);

type Handler = (request: Request) => Promise<Response>;

async function storages(): Promise<
  [string, RegistryStorage, () => Promise<void>][]
> {
  const root = await Deno.makeTempDir({ prefix: "oci-server-" });
  return [
    ["memory", memoryStorage(), () => Promise.resolve()],
    [
      "layout",
      await layoutStorage(root),
      () => Deno.remove(root, { recursive: true }),
    ],
  ];
}

function call(
  registry: Handler,
  method: string,
  path: string,
  init: RequestInit = {},
) {
  return registry(new Request(`${BASE}${path}`, { method, ...init }));
}

async function errorCode(response: Response): Promise<string> {
  const body = await response.json();
  return body.errors[0].code;
}

async function pushBlob(
  registry: Handler,
  name: string,
  content: string,
): Promise<string> {
  const digest = digestOf(content);
  const response = await call(
    registry,
    "POST",
    `/v2/${name}/blobs/uploads/?digest=${digest}`,
    { body: content },
  );
  assert.equal(response.status, 201);
  return digest;
}

function manifestOf(
  layers: string[],
  extra: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    config: {
      mediaType: "application/vnd.oci.empty.v1+json",
      digest: EMPTY_DIGEST,
      size: 2,
    },
    layers: layers.map((content) => ({
      mediaType: "application/vnd.oci.image.layer.v1.tar",
      digest: digestOf(content),
      size: content.length,
    })),
    ...extra,
  });
}

async function pushManifest(
  registry: Handler,
  name: string,
  reference: string,
  body: string,
  mediaType = OCI_MANIFEST_MEDIA_TYPE,
) {
  return await call(registry, "PUT", `/v2/${name}/manifests/${reference}`, {
    body,
    headers: { "content-type": mediaType },
  });
}

/** Registers a test per storage. */
function serverTest(
  name: string,
  fn: (registry: Handler, storage: RegistryStorage) => Promise<void>,
) {
  for (const kind of ["memory", "layout"]) {
    Deno.test(`${name} [${kind}]`, async () => {
      const all = await storages();
      try {
        const [, storage] = all.find(([k]) => k === kind)!;
        await fn(createRegistry({ storage }), storage);
      } finally {
        for (const [, , cleanup] of all) await cleanup();
      }
    });
  }
}

serverTest(
  "end-1: GET /v2/ answers 200 with the API version header",
  async (registry) => {
    const response = await call(registry, "GET", "/v2/");
    assert.equal(response.status, 200);
    assert.equal(
      response.headers.get("docker-distribution-api-version"),
      "registry/2.0",
    );
    await response.body?.cancel();
  },
);

serverTest(
  "end-2: GET and HEAD of a blob: 200 with digest and length, 404 when unknown",
  async (registry) => {
    const digest = await pushBlob(registry, "app", "layer-bytes");
    const head = await call(registry, "HEAD", `/v2/app/blobs/${digest}`);
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), "11");
    assert.equal(head.headers.get("docker-content-digest"), digest);
    const get = await call(registry, "GET", `/v2/app/blobs/${digest}`);
    assert.equal(await get.text(), "layer-bytes");
    const missing = await call(
      registry,
      "GET",
      `/v2/app/blobs/${digestOf("nope")}`,
    );
    assert.equal(missing.status, 404);
    assert.equal(await errorCode(missing), "BLOB_UNKNOWN");
    assert.equal(
      (await call(registry, "HEAD", `/v2/app/blobs/${digestOf("nope")}`))
        .status,
      404,
    );
    const otherRepo = await call(registry, "HEAD", `/v2/other/blobs/${digest}`);
    assert.equal(
      otherRepo.status,
      404,
      "a blob is visible only in repositories it was pushed or mounted to",
    );
  },
);

serverTest("end-2: GET of a blob honours Range", async (registry) => {
  const digest = await pushBlob(registry, "app", "0123456789");
  const partial = await call(registry, "GET", `/v2/app/blobs/${digest}`, {
    headers: { range: "bytes=2-5" },
  });
  assert.equal(partial.status, 206);
  assert.equal(partial.headers.get("content-range"), "bytes 2-5/10");
  assert.equal(await partial.text(), "2345");
  const suffix = await call(registry, "GET", `/v2/app/blobs/${digest}`, {
    headers: { range: "bytes=7-" },
  });
  assert.equal(await suffix.text(), "789");
  const bad = await call(registry, "GET", `/v2/app/blobs/${digest}`, {
    headers: { range: "bytes=20-30" },
  });
  assert.equal(bad.status, 416);
});

serverTest(
  "end-3 and end-7: PUT then GET/HEAD a manifest by tag and by digest",
  async (registry) => {
    await pushBlob(registry, "app", EMPTY);
    await pushBlob(registry, "app", "L1");
    const body = manifestOf(["L1"]);
    const put = await pushManifest(registry, "app", "v1", body);
    assert.equal(put.status, 201);
    const digest = digestOf(body);
    assert.equal(put.headers.get("docker-content-digest"), digest);
    assert.equal(put.headers.get("location"), `/v2/app/manifests/${digest}`);
    for (const reference of ["v1", digest]) {
      const get = await call(registry, "GET", `/v2/app/manifests/${reference}`);
      assert.equal(get.status, 200);
      assert.equal(get.headers.get("content-type"), OCI_MANIFEST_MEDIA_TYPE);
      assert.equal(get.headers.get("docker-content-digest"), digest);
      assert.equal(await get.text(), body, "the exact bytes pushed");
      const head = await call(
        registry,
        "HEAD",
        `/v2/app/manifests/${reference}`,
      );
      assert.equal(head.status, 200);
      assert.equal(head.headers.get("content-length"), String(body.length));
    }
    const missing = await call(registry, "GET", "/v2/app/manifests/v2");
    assert.equal(missing.status, 404);
    assert.equal(await errorCode(missing), "MANIFEST_UNKNOWN");
    const byDigest = await pushManifest(registry, "app", digest, body);
    assert.equal(byDigest.status, 201);
  },
);

serverTest(
  "end-4a, end-5, end-6, end-13: chunked upload with status, then PUT",
  async (registry) => {
    const start = await call(registry, "POST", "/v2/app/blobs/uploads/");
    assert.equal(start.status, 202);
    const location = start.headers.get("location")!;
    assert.match(location, /^\/v2\/app\/blobs\/uploads\/[0-9a-f-]{36}$/);
    const patch1 = await call(registry, "PATCH", location, {
      body: "hello ",
      headers: {
        "content-range": "0-5",
        "content-type": "application/octet-stream",
      },
    });
    assert.equal(patch1.status, 202);
    assert.equal(patch1.headers.get("range"), "0-5");
    const status = await call(registry, "GET", location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get("range"), "0-5");
    const patch2 = await call(registry, "PATCH", location, {
      body: "world",
      headers: { "content-range": "6-10" },
    });
    assert.equal(patch2.status, 202);
    const digest = digestOf("hello world");
    const put = await call(registry, "PUT", `${location}?digest=${digest}`);
    assert.equal(put.status, 201);
    assert.equal(put.headers.get("docker-content-digest"), digest);
    assert.equal(
      await (await call(registry, "GET", `/v2/app/blobs/${digest}`)).text(),
      "hello world",
    );
    const gone = await call(registry, "GET", location);
    assert.equal(gone.status, 404);
    assert.equal(await errorCode(gone), "BLOB_UPLOAD_UNKNOWN");
  },
);

serverTest(
  "end-4b: POST with ?digest= stores the blob in one request",
  async (registry) => {
    const digest = digestOf("one shot");
    const response = await call(
      registry,
      "POST",
      `/v2/app/blobs/uploads/?digest=${digest}`,
      { body: "one shot" },
    );
    assert.equal(response.status, 201);
    assert.equal(response.headers.get("location"), `/v2/app/blobs/${digest}`);
  },
);

serverTest(
  "end-6: a monolithic PUT after POST stores the blob",
  async (registry) => {
    const start = await call(registry, "POST", "/v2/app/blobs/uploads/");
    const digest = digestOf("monolithic");
    const put = await call(
      registry,
      "PUT",
      `${start.headers.get("location")}?digest=${digest}`,
      { body: "monolithic" },
    );
    assert.equal(put.status, 201);
  },
);

serverTest(
  "end-8: tag list with n and last, Link to the next page, NAME_UNKNOWN",
  async (registry) => {
    await pushBlob(registry, "app", EMPTY);
    for (const tag of ["c", "a", "e", "b", "d"]) {
      assert.equal(
        (await pushManifest(
          registry,
          "app",
          tag,
          manifestOf([], { annotations: { t: tag } }),
        )).status,
        201,
      );
    }
    assert.deepEqual(
      await (await call(registry, "GET", "/v2/app/tags/list")).json(),
      { name: "app", tags: ["a", "b", "c", "d", "e"] },
    );
    const page = await call(registry, "GET", "/v2/app/tags/list?n=2");
    assert.deepEqual((await page.json()).tags, ["a", "b"]);
    assert.equal(
      page.headers.get("link"),
      '</v2/app/tags/list?n=2&last=b>; rel="next"',
    );
    const next = await call(registry, "GET", "/v2/app/tags/list?n=2&last=b");
    assert.deepEqual((await next.json()).tags, ["c", "d"]);
    const last = await call(registry, "GET", "/v2/app/tags/list?n=2&last=d");
    assert.deepEqual((await last.json()).tags, ["e"]);
    assert.equal(last.headers.get("link"), null);
    const unknown = await call(registry, "GET", "/v2/nothing/tags/list");
    assert.equal(unknown.status, 404);
    assert.equal(await errorCode(unknown), "NAME_UNKNOWN");
  },
);

serverTest(
  "end-9 and end-10: DELETE a tag, a manifest and a blob",
  async (registry) => {
    await pushBlob(registry, "app", EMPTY);
    const body = manifestOf([]);
    await pushManifest(registry, "app", "v1", body);
    await pushManifest(registry, "app", "v2", body);
    assert.equal(
      (await call(registry, "DELETE", "/v2/app/manifests/v1")).status,
      202,
    );
    assert.equal(
      (await call(registry, "GET", "/v2/app/manifests/v1")).status,
      404,
    );
    assert.equal(
      (await call(registry, "GET", `/v2/app/manifests/${digestOf(body)}`))
        .status,
      200,
      "untagging keeps the manifest",
    );
    assert.equal(
      (await call(registry, "DELETE", `/v2/app/manifests/${digestOf(body)}`))
        .status,
      202,
    );
    assert.equal(
      (await call(registry, "GET", "/v2/app/manifests/v2")).status,
      404,
      "deleting by digest drops its tags",
    );
    assert.equal(
      (await call(registry, "DELETE", `/v2/app/blobs/${EMPTY_DIGEST}`)).status,
      202,
    );
    assert.equal(
      (await call(registry, "HEAD", `/v2/app/blobs/${EMPTY_DIGEST}`)).status,
      404,
    );
    const again = await call(
      registry,
      "DELETE",
      `/v2/app/blobs/${EMPTY_DIGEST}`,
    );
    assert.equal(again.status, 404);
    assert.equal(await errorCode(again), "BLOB_UNKNOWN");
  },
);

Deno.test("DELETE is refused with UNSUPPORTED when deletes are disabled", async () => {
  const registry = createRegistry({ delete: false });
  const response = await call(
    registry,
    "DELETE",
    `/v2/app/blobs/${EMPTY_DIGEST}`,
  );
  assert.equal(response.status, 405);
  assert.equal(await errorCode(response), "UNSUPPORTED");
});

serverTest(
  "end-11: mount from another repository, 202 when the source lacks the blob",
  async (registry) => {
    const digest = await pushBlob(registry, "base", "shared layer");
    const mounted = await call(
      registry,
      "POST",
      `/v2/app/blobs/uploads/?mount=${digest}&from=base`,
    );
    assert.equal(mounted.status, 201);
    assert.equal(mounted.headers.get("location"), `/v2/app/blobs/${digest}`);
    assert.equal(
      (await call(registry, "HEAD", `/v2/app/blobs/${digest}`)).status,
      200,
    );
    const fallback = await call(
      registry,
      "POST",
      `/v2/other/blobs/uploads/?mount=${digest}&from=elsewhere`,
    );
    assert.equal(fallback.status, 202);
    assert.match(
      fallback.headers.get("location")!,
      /\/v2\/other\/blobs\/uploads\//,
    );
  },
);

serverTest(
  "end-12: referrers list manifests with a subject, filtered by artifactType",
  async (registry) => {
    await pushBlob(registry, "app", EMPTY);
    const subject = manifestOf([]);
    await pushManifest(registry, "app", "v1", subject);
    const subjectDescriptor = {
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      digest: digestOf(subject),
      size: subject.length,
    };
    const signature = manifestOf([], {
      artifactType: "application/vnd.example.sig",
      subject: subjectDescriptor,
      annotations: { kind: "sig" },
    });
    const sbom = manifestOf([], {
      artifactType: "application/vnd.example.sbom",
      subject: subjectDescriptor,
    });
    const put = await pushManifest(
      registry,
      "app",
      digestOf(signature),
      signature,
    );
    assert.equal(put.headers.get("oci-subject"), digestOf(subject));
    await pushManifest(registry, "app", digestOf(sbom), sbom);
    const all = await call(
      registry,
      "GET",
      `/v2/app/referrers/${digestOf(subject)}`,
    );
    assert.equal(all.headers.get("content-type"), OCI_INDEX_MEDIA_TYPE);
    const index = await all.json();
    assert.equal(index.mediaType, OCI_INDEX_MEDIA_TYPE);
    assert.deepEqual(
      index.manifests.map((m: { artifactType: string }) => m.artifactType)
        .sort(),
      [
        "application/vnd.example.sbom",
        "application/vnd.example.sig",
      ],
    );
    const filtered = await call(
      registry,
      "GET",
      `/v2/app/referrers/${
        digestOf(subject)
      }?artifactType=application/vnd.example.sig`,
    );
    assert.equal(filtered.headers.get("oci-filters-applied"), "artifactType");
    const only = await filtered.json();
    assert.equal(only.manifests.length, 1);
    assert.deepEqual(only.manifests[0].annotations, { kind: "sig" });
    const none =
      await (await call(registry, "GET", `/v2/app/referrers/${digestOf("x")}`))
        .json();
    assert.deepEqual(
      none.manifests,
      [],
      "an unknown subject gives an empty index, not 404",
    );
  },
);

serverTest(
  "an index is accepted only when its manifests exist",
  async (registry) => {
    await pushBlob(registry, "app", EMPTY);
    const child = manifestOf([]);
    const index = (digest: string) =>
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX_MEDIA_TYPE,
        manifests: [{
          mediaType: OCI_MANIFEST_MEDIA_TYPE,
          digest,
          size: child.length,
          platform: { os: "linux", architecture: "amd64" },
        }],
      });
    const early = await pushManifest(
      registry,
      "app",
      "v1",
      index(digestOf(child)),
      OCI_INDEX_MEDIA_TYPE,
    );
    assert.equal(early.status, 400);
    assert.equal(await errorCode(early), "MANIFEST_BLOB_UNKNOWN");
    await pushManifest(registry, "app", digestOf(child), child);
    assert.equal(
      (await pushManifest(
        registry,
        "app",
        "v1",
        index(digestOf(child)),
        OCI_INDEX_MEDIA_TYPE,
      )).status,
      201,
    );
  },
);

const BAD: [
  string,
  (registry: Handler) => Promise<Response>,
  number,
  string,
][] = [
  [
    "an uppercase name",
    (r) => call(r, "GET", "/v2/App/tags/list"),
    400,
    "NAME_INVALID",
  ],
  // A literal or encoded "../" is resolved by URL parsing before any handler sees it.
  [
    "a name with dots",
    (r) => call(r, "GET", "/v2/a/..b/tags/list"),
    400,
    "NAME_INVALID",
  ],
  [
    "a name with an empty component",
    (r) => call(r, "HEAD", `/v2/a//b/blobs/${EMPTY_DIGEST}`),
    400,
    "NAME_INVALID",
  ],
  [
    "a malformed blob digest",
    (r) => call(r, "GET", "/v2/app/blobs/sha256:xyz"),
    400,
    "DIGEST_INVALID",
  ],
  [
    "a malformed single-POST digest",
    (r) =>
      call(r, "POST", "/v2/app/blobs/uploads/?digest=md5:abc", { body: "x" }),
    400,
    "DIGEST_INVALID",
  ],
  [
    "bytes that do not match the digest",
    (r) =>
      call(r, "POST", `/v2/app/blobs/uploads/?digest=${digestOf("a")}`, {
        body: "b",
      }),
    400,
    "DIGEST_INVALID",
  ],
  [
    "an unknown upload id",
    (r) => call(r, "PATCH", "/v2/app/blobs/uploads/no-such-id", { body: "x" }),
    404,
    "BLOB_UPLOAD_UNKNOWN",
  ],
  [
    "a manifest that is not JSON",
    (r) => pushManifest(r, "app", "v1", "{nope"),
    400,
    "MANIFEST_INVALID",
  ],
  [
    "a manifest with an unknown media type",
    (r) => pushManifest(r, "app", "v1", "{}", "application/json"),
    400,
    "MANIFEST_INVALID",
  ],
  [
    "a manifest whose mediaType contradicts Content-Type",
    (r) =>
      pushManifest(
        r,
        "app",
        "v1",
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_INDEX_MEDIA_TYPE,
          manifests: [],
        }),
      ),
    400,
    "MANIFEST_INVALID",
  ],
  [
    "a manifest with a wrong schemaVersion",
    (r) =>
      pushManifest(
        r,
        "app",
        "v1",
        JSON.stringify({ schemaVersion: 1, config: {}, layers: [] }),
      ),
    400,
    "MANIFEST_INVALID",
  ],
  [
    "a manifest whose blobs are missing",
    (r) => pushManifest(r, "app", "v1", manifestOf(["never pushed"])),
    400,
    "MANIFEST_BLOB_UNKNOWN",
  ],
  [
    "a manifest pushed under another digest",
    (r) => pushManifest(r, "app", digestOf("other"), manifestOf([])),
    400,
    "DIGEST_INVALID",
  ],
  [
    "an invalid tag",
    (r) => pushManifest(r, "app", "-bad", manifestOf([])),
    400,
    "TAG_INVALID",
  ],
  [
    "an oversize manifest",
    (r) => pushManifest(r, "app", "v1", " ".repeat(4 * 1024 * 1024 + 1)),
    413,
    "SIZE_INVALID",
  ],
  [
    "a bad n on tag lists",
    (r) => call(r, "GET", "/v2/app/tags/list?n=-1"),
    400,
    "PAGINATION_NUMBER_INVALID",
  ],
  [
    "an unknown endpoint",
    (r) => call(r, "GET", "/v2/app/nothing"),
    404,
    "NOT_FOUND",
  ],
  [
    "a method an endpoint lacks",
    (r) => call(r, "POST", "/v2/app/tags/list"),
    405,
    "UNSUPPORTED",
  ],
];

for (const [what, send, status, code] of BAD) {
  serverTest(
    `the server answers ${what} with ${status} ${code}, stores nothing, keeps serving`,
    async (registry, storage) => {
      await pushBlob(registry, "app", EMPTY);
      const response = await send(registry);
      assert.equal(response.status, status);
      assert.equal(await errorCode(response), code);
      assert.deepEqual(
        await storage.listTags("app"),
        undefined,
        "no manifest was stored",
      );
      assert.equal((await call(registry, "GET", "/v2/")).status, 200);
    },
  );
}

serverTest(
  "a PATCH whose Content-Range does not continue the upload gets 416",
  async (registry) => {
    const start = await call(registry, "POST", "/v2/app/blobs/uploads/");
    const location = start.headers.get("location")!;
    await call(registry, "PATCH", location, {
      body: "abc",
      headers: { "content-range": "0-2" },
    });
    const gap = await call(registry, "PATCH", location, {
      body: "def",
      headers: { "content-range": "5-7" },
    });
    assert.equal(gap.status, 416);
    assert.equal(gap.headers.get("range"), "0-2");
    await gap.body?.cancel();
    const junk = await call(registry, "PATCH", location, {
      body: "def",
      headers: { "content-range": "junk" },
    });
    assert.equal(junk.status, 416);
    await junk.body?.cancel();
    const digest = digestOf("abc");
    assert.equal(
      (await call(registry, "PUT", `${location}?digest=${digest}`)).status,
      201,
      "the upload survives",
    );
  },
);

serverTest(
  "a failed upload leaves no blob and the upload is gone",
  async (registry, storage) => {
    const start = await call(registry, "POST", "/v2/app/blobs/uploads/");
    const location = start.headers.get("location")!;
    const wrong = await call(
      registry,
      "PUT",
      `${location}?digest=${digestOf("expected")}`,
      { body: "actual" },
    );
    assert.equal(wrong.status, 400);
    assert.equal(await errorCode(wrong), "DIGEST_INVALID");
    assert.equal(
      await storage.blobSize(undefined, digestOf("actual")),
      undefined,
    );
    assert.equal(
      await storage.blobSize(undefined, digestOf("expected")),
      undefined,
    );
    assert.equal((await call(registry, "GET", location)).status, 404);
  },
);

/** The files in a layout storage's upload directory (unfinished sessions). */
async function uploadFiles(root: string): Promise<string[]> {
  const names = [];
  for await (const e of Deno.readDir(`${root}/.uploads`)) names.push(e.name);
  return names;
}

Deno.test("layoutStorage keeps a repository as an OCI layout with tags in index.json", async () => {
  const root = await Deno.makeTempDir();
  try {
    const registry = createRegistry({ storage: await layoutStorage(root) });
    await pushBlob(registry, "team/app", EMPTY);
    const body = manifestOf([]);
    await pushManifest(registry, "team/app", "v1", body);
    const index = JSON.parse(
      await Deno.readTextFile(`${root}/team/app/index.json`),
    );
    assert.equal(index.manifests[0].digest, digestOf(body));
    assert.equal(
      index.manifests[0].annotations["org.opencontainers.image.ref.name"],
      "v1",
    );
    assert.deepEqual(
      JSON.parse(await Deno.readTextFile(`${root}/team/app/oci-layout`)),
      { imageLayoutVersion: "1.0.0" },
    );
    assert.equal(
      await Deno.readTextFile(
        `${root}/team/app/blobs/sha256/${EMPTY_DIGEST.slice(7)}`,
      ),
      EMPTY,
    );
    assert.deepEqual(await uploadFiles(root), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a single POST upload whose body fails leaves no upload file behind", async () => {
  const root = await Deno.makeTempDir();
  try {
    const registry = createRegistry({ storage: await layoutStorage(root) });
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 2) controller.enqueue(new Uint8Array(1000));
        else controller.error(new Error("the client went away"));
      },
    });
    const response = await call(
      registry,
      "POST",
      `/v2/app/blobs/uploads/?digest=${digestOf("never")}`,
      { body },
    );
    await response.body?.cancel();
    assert.equal(response.status, 500);
    assert.deepEqual(await uploadFiles(root), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("an upload session left idle past uploadTimeout is dropped with its bytes", async () => {
  const root = await Deno.makeTempDir();
  try {
    const registry = createRegistry({
      storage: await layoutStorage(root),
      uploadTimeout: 50,
    });
    const abandoned = await call(registry, "POST", "/v2/app/blobs/uploads/");
    const location = abandoned.headers.get("location")!;
    const patch = await call(registry, "PATCH", location, { body: "partial" });
    assert.equal(patch.status, 202);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Starting another upload sweeps the idle one.
    const next = await call(registry, "POST", "/v2/app/blobs/uploads/");
    assert.equal(next.status, 202);
    assert.equal((await call(registry, "GET", location)).status, 404);
    assert.equal(
      (await uploadFiles(root)).length,
      1,
      "only the new session's file is left",
    );
    const done = await call(
      registry,
      "PUT",
      `${next.headers.get("location")!}?digest=${digestOf("whole")}`,
      { body: "whole" },
    );
    assert.equal(done.status, 201);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
