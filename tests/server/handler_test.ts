// Conformance of the embedded registry to the distribution spec's endpoints (end-1 … end-13) and
// its MUST statements, called in-process over both kinds of repositories (memory, layouts on
// disk); bad input gets the right 4xx.
import assert from "node:assert/strict";
import { createRegistry } from "../../src/server/handler.ts";
import {
  layoutRepositories,
  memoryRepositories,
  type Repositories,
} from "../../src/server/repositories.ts";
import {
  checkRepositoryName,
  RepositoryNameError,
} from "../../src/server/repository_name.ts";
import { UploadLimitError } from "../../src/store/store.ts";
import { memoryStore } from "../../src/store/memory_store.ts";
import {
  UploadSessionLimitError,
  UploadSessions,
} from "../../src/server/upload_sessions.ts";
import { requirePeer } from "../../peers/available.ts";
import { digestOf } from "../../src/oci/digest.ts";
import {
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "../../src/oci/media_types.ts";

const BASE = "http://registry.test";
const EMPTY = "{}";
const EMPTY_DIGEST = digestOf(EMPTY);

type Handler = (request: Request) => Promise<Response>;

async function storages(): Promise<
  [string, Repositories, () => Promise<void>][]
> {
  const root = await Deno.makeTempDir({ prefix: "oci-server-" });
  return [
    ["memory", memoryRepositories(), () => Promise.resolve()],
    [
      "layout",
      await layoutRepositories(root),
      () => Deno.remove(root, { recursive: true }),
    ],
  ];
}

/** The tags of a repository, or undefined when it has none (no manifest was ever pushed). */
async function tagsOf(
  repositories: Repositories,
  name: string,
): Promise<string[] | undefined> {
  return await repositories.get(name).listTags().catch((error) => {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  });
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

/** Registers a test per kind of repositories. */
function serverTest(
  name: string,
  fn: (registry: Handler, repositories: Repositories) => Promise<void>,
) {
  for (const kind of ["memory", "layout"]) {
    Deno.test(`${name} [${kind}]`, async () => {
      const all = await storages();
      try {
        const [, repositories] = all.find(([k]) => k === kind)!;
        await using registry = createRegistry({ repositories });
        await fn(registry, repositories);
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
    "a manifest whose layer has a negative size",
    (r) =>
      pushManifest(
        r,
        "app",
        "v1",
        JSON.stringify({
          ...JSON.parse(manifestOf(["x"])),
          layers: [{
            mediaType: "application/vnd.oci.image.layer.v1.tar",
            digest: digestOf("x"),
            size: -1,
          }],
        }),
      ),
    400,
    "MANIFEST_INVALID",
  ],
  [
    "an index entry with a string platform",
    (r) =>
      pushManifest(
        r,
        "app",
        "v1",
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_INDEX_MEDIA_TYPE,
          manifests: [{
            mediaType: OCI_MANIFEST_MEDIA_TYPE,
            digest: digestOf(manifestOf([])),
            size: manifestOf([]).length,
            platform: "linux/amd64",
          }],
        }),
        OCI_INDEX_MEDIA_TYPE,
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
    async (registry, repositories) => {
      await pushBlob(registry, "app", EMPTY);
      const response = await send(registry);
      assert.equal(response.status, status);
      assert.equal(await errorCode(response), code);
      assert.deepEqual(
        await tagsOf(repositories, "app"),
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
  async (registry, repositories) => {
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
      await repositories.blobs.blobSize(digestOf("actual")),
      undefined,
    );
    assert.equal(
      await repositories.blobs.blobSize(digestOf("expected")),
      undefined,
    );
    assert.equal((await call(registry, "GET", location)).status, 404);
  },
);

/** The files in the upload directory under --root (unfinished sessions). */
async function uploadFiles(root: string): Promise<string[]> {
  const names = [];
  for await (const e of Deno.readDir(`${root}/.uploads`)) names.push(e.name);
  return names;
}

Deno.test("layoutRepositories keeps a repository as an OCI layout with tags in index.json", async () => {
  const root = await Deno.makeTempDir();
  try {
    const registry = createRegistry({
      repositories: await layoutRepositories(root),
    });
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
    const registry = createRegistry({
      repositories: await layoutRepositories(root),
    });
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
      repositories: await layoutRepositories(root),
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

// Class 4 of the issue "Safety": upload sessions hold no descriptor, are capped and expire.

/** How many descriptors this process has open (Linux; `ls`, as /proc/self needs all rights). */
async function openDescriptors(): Promise<number> {
  const { stdout } = await new Deno.Command("ls", {
    args: [`/proc/${Deno.pid}/fd`],
  }).output();
  return new TextDecoder().decode(stdout).trim().split("\n").length;
}

Deno.test("layout upload sessions hold no file descriptor between requests", async () => {
  const root = await Deno.makeTempDir();
  try {
    await using registry = createRegistry({
      repositories: await layoutRepositories(root),
    });
    const before = await openDescriptors();
    const locations = [];
    for (let i = 0; i < 200; i++) {
      const post = await call(registry, "POST", "/v2/app/blobs/uploads/");
      assert.equal(post.status, 202);
      const location = post.headers.get("location")!;
      const patch = await call(registry, "PATCH", location, {
        body: `part ${i}`,
      });
      assert.equal(patch.status, 202);
      locations.push(location);
    }
    const held = (await openDescriptors()) - before;
    assert.ok(held < 10, `200 open sessions hold ${held} descriptors`);
    assert.equal((await uploadFiles(root)).length, 200);
    const done = await call(
      registry,
      "PUT",
      `${locations[7]}?digest=${digestOf("part 7")}`,
    );
    assert.equal(done.status, 201);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** A body that sends `bytes`, then fails as a client that went away. */
function failingBody(bytes: string): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream({
    pull(controller) {
      if (sent) return controller.error(new Error("the client went away"));
      sent = true;
      controller.enqueue(new TextEncoder().encode(bytes));
    },
  });
}

serverTest(
  "a PATCH whose body fails leaves the session as it was, and the chunk can be sent again",
  async (registry) => {
    const post = await call(registry, "POST", "/v2/app/blobs/uploads/");
    const location = post.headers.get("location")!;
    assert.equal(
      (await call(registry, "PATCH", location, { body: "first " })).status,
      202,
    );
    const failed = await call(registry, "PATCH", location, {
      body: failingBody("half of the second"),
    });
    await failed.body?.cancel();
    assert.equal(failed.status, 500);
    const status = await call(registry, "GET", location);
    assert.equal(status.headers.get("range"), "0-5");
    const again = await call(registry, "PATCH", location, {
      body: "second",
      headers: { "content-range": "6-11" },
    });
    assert.equal(again.status, 202);
    const done = await call(
      registry,
      "PUT",
      `${location}?digest=${digestOf("first second")}`,
    );
    assert.equal(done.status, 201);
  },
);

Deno.test("upload sessions are capped per client and in total with 429 TOOMANYREQUESTS", async () => {
  await using registry = createRegistry({
    maxUploads: 3,
    maxUploadsPerClient: 2,
  });
  const from = (hostname: string) => ({
    remoteAddr: { transport: "tcp" as const, hostname, port: 1 },
  });
  const post = (hostname: string) =>
    registry(
      new Request(`${BASE}/v2/app/blobs/uploads/`, { method: "POST" }),
      from(hostname),
    );
  assert.equal((await post("10.0.0.1")).status, 202);
  const second = await post("10.0.0.1");
  assert.equal(second.status, 202);
  const third = await post("10.0.0.1");
  assert.equal(third.status, 429);
  const body = await third.json();
  assert.equal(body.errors[0].code, "TOOMANYREQUESTS");
  assert.match(body.errors[0].message, /10\.0\.0\.1 already has 2 unfinished/);
  assert.equal((await post("10.0.0.2")).status, 202);
  const full = await post("10.0.0.3");
  assert.equal(full.status, 429);
  assert.match(
    (await full.json()).errors[0].message,
    /already has 3 unfinished uploads/,
  );
  // Ending a session gives its room back.
  const ended = await registry(
    new Request(`${BASE}${second.headers.get("location")}`, {
      method: "DELETE",
    }),
  );
  assert.equal(ended.status, 204);
  assert.equal((await post("10.0.0.3")).status, 202);
});

Deno.test("UploadSessions drops idle sessions on its timer, and close() drops the rest", async () => {
  const store = memoryStore();
  const sessions = new UploadSessions({
    idleTimeout: 20,
    maxSessions: 10,
    maxSessionsPerClient: 10,
  });
  const idle = await sessions.open("app", "a", () => store.startUpload());
  for (let i = 0; i < 100 && sessions.get(idle, "app"); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(sessions.get(idle, "app"), undefined, "the timer dropped it");
  const kept = await sessions.open("app", "a", () => store.startUpload());
  assert.equal(
    sessions.get(kept, "other"),
    undefined,
    "ids are per repository",
  );
  await sessions.close();
  assert.equal(sessions.size, 0);
  await assert.rejects(
    sessions.open("app", "a", () => store.startUpload()),
    /closed/,
  );
});

Deno.test("UploadSessions refuses past its limits with a typed error", async () => {
  const store = memoryStore();
  await using sessions = new UploadSessions({
    idleTimeout: 60_000,
    maxSessions: 1,
    maxSessionsPerClient: 1,
  });
  await sessions.open("app", "a", () => store.startUpload());
  const error = await sessions.open("app", "b", () => store.startUpload())
    .catch((e) => e);
  assert.ok(error instanceof UploadSessionLimitError);
  assert.equal(error.scope, "total");
  // A store that cannot start an upload gives the room back.
  await using other = new UploadSessions({
    idleTimeout: 60_000,
    maxSessions: 1,
    maxSessionsPerClient: 1,
  });
  await assert.rejects(
    other.open("app", "a", () => Promise.reject(new Error("disk full"))),
    /disk full/,
  );
  await other.open("app", "a", () => store.startUpload());
});

Deno.test("memoryRepositories caps the bytes unfinished uploads hold, and refuses a declared length at once", async () => {
  await using registry = createRegistry({
    repositories: memoryRepositories({ maxUploadBytes: 1000 }),
  });
  const open = async () =>
    (await call(registry, "POST", "/v2/app/blobs/uploads/")).headers.get(
      "location",
    )!;
  const first = await open();
  let pulled = false;
  const never = new ReadableStream<Uint8Array>({
    pull() {
      pulled = true;
    },
  }, { highWaterMark: 0 });
  const declared = await registry(
    new Request(`${BASE}${first}`, {
      method: "PATCH",
      body: never,
      headers: { "content-length": "5000" },
    }),
  );
  assert.equal(declared.status, 413);
  assert.equal((await declared.json()).errors[0].code, "SIZE_INVALID");
  assert.equal(pulled, false, "the body was not read");
  assert.equal(
    (await call(registry, "PATCH", first, { body: "x".repeat(600) })).status,
    202,
  );
  const second = await open();
  const over = await call(registry, "PATCH", second, { body: "y".repeat(600) });
  assert.equal(over.status, 429);
  assert.equal((await over.json()).errors[0].code, "TOOMANYREQUESTS");
  assert.equal(
    (await call(registry, "GET", second)).headers.get("range"),
    "0-0",
  );
  await call(registry, "DELETE", first);
  assert.equal(
    (await call(registry, "PATCH", second, { body: "y".repeat(600) })).status,
    202,
  );
  const limit = await memoryStore({ maxUploadBytes: 1 }).startUpload();
  const error = await limit.append(new Response("ab").body!).catch((e) => e);
  assert.ok(error instanceof UploadLimitError);
  assert.equal(error.scope, "upload");
});

Deno.test("running out of descriptors answers 503 UNAVAILABLE with Retry-After, not 500", async () => {
  const repositories = memoryRepositories();
  const exhausted = Object.assign(
    new Error("Too many open files (os error 24): open '/x'"),
    { code: "EMFILE" },
  );
  await using registry = createRegistry({
    repositories: {
      ...repositories,
      get: (name) => ({
        ...repositories.get(name),
        startUpload: () => Promise.reject(exhausted),
      }),
    },
  });
  const response = await call(registry, "POST", "/v2/app/blobs/uploads/");
  assert.equal(response.status, 503);
  assert.equal(response.headers.get("retry-after"), "1");
  assert.equal((await response.json()).errors[0].code, "UNAVAILABLE");
  assert.equal((await call(registry, "GET", "/v2/")).status, 200);
});

// Class 5: repository names map to --root paths without collisions.

Deno.test("checkRepositoryName refuses layout components, dot names and bad grammar, naming the component", () => {
  for (
    const name of [
      "team/app",
      "team/app/x",
      `a/sha256/${"0".repeat(64)}`,
      "blobs-x/index",
      "a.b/c__d/e--f",
    ]
  ) {
    checkRepositoryName(name);
  }
  const refused: [string, string][] = [
    ["team/app/blobs", "blobs"],
    ["first/app/blobs/sha256", "blobs"],
    ["blobs", "blobs"],
    ["team/index.json", "index.json"],
    ["team/oci-layout/x", "oci-layout"],
    ["team/.blobs", ".blobs"],
    ["team/../x", ".."],
    ["team/./x", "."],
    ["Team/app", "Team"],
    ["team//app", ""],
    ["team/%2e%2e", "%2e%2e"],
    ["team/app/", ""],
  ];
  for (const [name, component] of refused) {
    const error = (() => {
      try {
        checkRepositoryName(name);
      } catch (e) {
        return e;
      }
    })();
    assert.ok(error instanceof RepositoryNameError, name);
    assert.equal(error.component, component, name);
    assert.ok(error.message.includes(`"${component}"`), error.message);
  }
  assert.throws(() => checkRepositoryName("a".repeat(256)), /1 to 255/);
});

serverTest(
  "every endpoint refuses a reserved component with 400 NAME_INVALID naming it, and stores nothing",
  async (registry, repositories) => {
    const digest = digestOf("x");
    const requests: [string, string, RequestInit?][] = [
      ["POST", `/v2/team/blobs/blobs/uploads/?digest=${digest}`, { body: "x" }],
      ["POST", "/v2/team/blobs/blobs/uploads/"],
      ["HEAD", `/v2/team/index.json/blobs/${digest}`],
      ["GET", `/v2/team/index.json/blobs/${digest}`],
      ["PUT", "/v2/team/oci-layout/manifests/v1", { body: manifestOf([]) }],
      ["GET", "/v2/team/oci-layout/manifests/v1"],
      ["GET", "/v2/a/blobs/tags/list"],
      ["GET", `/v2/a/index.json/referrers/${digest}`],
      ["POST", `/v2/team/app/blobs/uploads/?mount=${digest}&from=a/blobs`],
    ];
    for (const [method, path, init] of requests.slice(0, -1)) {
      const response = await call(registry, method, path, init);
      assert.equal(response.status, 400, `${method} ${path}`);
      if (method !== "HEAD") {
        const body = await response.json();
        assert.equal(body.errors[0].code, "NAME_INVALID");
        assert.match(
          body.errors[0].message,
          /"(blobs|index\.json|oci-layout)" is reserved/,
        );
      } else await response.body?.cancel();
    }
    assert.equal(await repositories.blobs.blobSize(digest), undefined);
    assert.equal(await tagsOf(repositories, "team"), undefined);
  },
);

Deno.test("layoutRepositories refuses a reserved name itself, for callers that skip the handler", async () => {
  const root = await Deno.makeTempDir();
  try {
    const repositories = await layoutRepositories(root);
    assert.throws(() => repositories.get("team/blobs"), RepositoryNameError);
    assert.throws(() => repositories.get("a/index.json"), RepositoryNameError);
    assert.deepEqual(
      [...Deno.readDirSync(`${root}/.blobs`)].map((e) => e.name),
      ["sha256"],
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** Every layout under a root that has an index.json, as repository names. */
async function layoutsUnder(root: string, prefix = ""): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(`${root}/${prefix}`)) {
    if (entry.name.startsWith(".") || entry.name === "blobs") continue;
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.name === "index.json") found.push(prefix);
    else if (entry.isDirectory) found.push(...await layoutsUnder(root, path));
  }
  return found;
}

Deno.test("nested repositories (team/app, team/app/x) keep valid layouts and their own blobs", async () => {
  const root = await Deno.makeTempDir();
  try {
    await using registry = createRegistry({
      repositories: await layoutRepositories(root),
    });
    for (const name of ["team/app/x", "team/app", "team"]) {
      await pushBlob(registry, name, EMPTY);
      await pushBlob(registry, name, `layer of ${name}`);
      const pushed = await pushManifest(
        registry,
        name,
        "v1",
        manifestOf([`layer of ${name}`]),
      );
      assert.equal(pushed.status, 201, name);
    }
    assert.deepEqual((await layoutsUnder(root)).sort(), [
      "team",
      "team/app",
      "team/app/x",
    ]);
    for (const name of ["team", "team/app", "team/app/x"]) {
      const index = JSON.parse(
        await Deno.readTextFile(`${root}/${name}/index.json`),
      );
      assert.equal(index.manifests.length, 1);
      assert.equal(
        await Deno.realPath(`${root}/${name}/blobs`),
        await Deno.realPath(`${root}/.blobs`),
      );
      for (const other of ["team", "team/app", "team/app/x"]) {
        const blob = await call(
          registry,
          "HEAD",
          `/v2/${name}/blobs/${digestOf(`layer of ${other}`)}`,
        );
        assert.equal(
          blob.status,
          other === name ? 200 : 404,
          `${other}'s layer in ${name}`,
        );
      }
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name:
    "umoci unpacks team/app while team/app/x is nested in its layout directory",
  ...requirePeer("umoci"),
  async fn() {
    const root = await Deno.makeTempDir();
    try {
      await using registry = createRegistry({
        repositories: await layoutRepositories(root),
      });
      const config = JSON.stringify({
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: [] },
      });
      for (const name of ["team/app", "team/app/x"]) {
        await pushBlob(registry, name, config);
        const manifest = JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST_MEDIA_TYPE,
          config: {
            mediaType: "application/vnd.oci.image.config.v1+json",
            digest: digestOf(config),
            size: config.length,
          },
          layers: [],
        });
        assert.equal(
          (await pushManifest(registry, name, "v1", manifest)).status,
          201,
        );
      }
      const unpack = await new Deno.Command("umoci", {
        args: [
          "unpack",
          "--rootless",
          "--image",
          `${root}/team/app:v1`,
          `${root}/.bundle`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(unpack.code, 0, new TextDecoder().decode(unpack.stderr));
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
