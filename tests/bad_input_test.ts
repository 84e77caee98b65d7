// Bad input from the outside world, in one place (issue 7, item 3): reference strings, malformed
// WWW-Authenticate headers, token responses of the wrong shape, broken manifests, registry error
// bodies that are not JSON, and hostile or damaged tarballs. Every case must end in a typed error
// whose message names what was wrong; a bare TypeError, SyntaxError or RangeError escaping from
// our code is a bug.
import { fetchManifest as fetchStoreManifest } from "../src/store/store.ts";
import assert from "node:assert/strict";
import {
  formatReference,
  parseReference,
  ReferenceSyntaxError,
} from "../src/oci/reference.ts";
import { DigestMismatchError, digestOf } from "../src/oci/digest.ts";
import { AuthenticationError } from "../src/transport/auth.ts";
import { ChallengeSyntaxError } from "../src/transport/challenge.ts";
import {
  ensureStatus,
  RegistryError,
  registryErrorOf,
} from "../src/transport/errors.ts";
import { createOpener } from "../src/transport/opener.ts";
import type { Transport } from "../src/transport/request_body.ts";
import {
  fetchJsonBlob,
  fetchManifest,
  getManifest,
  PlatformNotFoundError,
  selectPlatform,
} from "../src/store/remote/manifests.ts";
import {
  DOCKER_MANIFEST_LIST_MEDIA_TYPE,
  DOCKER_MANIFEST_MEDIA_TYPE,
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "../src/oci/media_types.ts";
import type { ImageIndex } from "../src/oci/manifest.ts";
import {
  extractLayer,
  LayerFormatError,
  UnsafeEntryError,
} from "../src/layer/extract_layer.ts";
import { staticCredentials } from "../src/transport/credentials.ts";
import { IndexDepthError, ManifestError } from "../src/oci/parse_manifest.ts";
import { openLayout } from "../src/store/layout_store.ts";
import { layoutStore } from "../src/store/layout_store.ts";
import { copyImage, resolveImage } from "../src/image/copy.ts";

const REGISTRY = "http://127.0.0.1:5000";
const REALM = "http://127.0.0.1:5000/token";
const REF = parseReference("127.0.0.1:5000/app:v1");
const MiB = 1024 * 1024;

/** No bare built-in error may escape: only our typed errors (which may extend them). */
function assertTyped(
  error: unknown,
  type: abstract new (...args: never[]) => Error,
  ...patterns: RegExp[]
): true {
  assert.ok(
    error instanceof type,
    `expected ${type.name}, got ${(error as Error)?.name}: ${error}`,
  );
  for (const pattern of patterns) assert.match(error.message, pattern);
  return true;
}

/** An opener over an in-process handler: no socket, no retries, no credentials. */
function openerOver(
  handler: (request: Request) => Response | Promise<Response>,
  credentials?: { username: string; password: string },
): { transport: Transport; requests: string[] } {
  const requests: string[] = [];
  const transport = createOpener({
    transport: async (request) => {
      requests.push(`${request.method} ${new URL(request.url).pathname}`);
      return await handler(request);
    },
    credentials: credentials
      ? staticCredentials(credentials)
      : () => Promise.resolve(undefined),
    retry: false,
  });
  return { transport, requests };
}

/** A body that yields `chunk` forever (or up to `limit` bytes), counting what was pulled. */
function endlessBody(
  chunk: Uint8Array,
  limit = Infinity,
): { body: ReadableStream<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled >= limit) return controller.close();
      pulled += chunk.byteLength;
      controller.enqueue(chunk.slice());
    },
  });
  return { body, pulled: () => pulled };
}

// ---------------------------------------------------------------------------------------------
// References

const REFERENCE_SEEDS = [
  "ubuntu",
  "ubuntu:22.04",
  "library/ubuntu@sha256:" + "c".repeat(64),
  "ghcr.io/spack/ubuntu-jammy:latest",
  "localhost/a__b/c--d.e:T_1.x-y",
  "localhost:5000/a/b/c/d/e/f",
  "127.0.0.1:5000/cache/app:v1",
  "[::1]:5000/a/b@sha256:" + "a".repeat(64),
  "[fe80::1%25eth0]:443/x",
  "example.com:1234/a/b/c:tag@sha256:" + "b".repeat(64),
  "example.com/a@sha512:" + "d".repeat(128),
  "registry-1.docker.io/library/alpine",
  "x/y:" + "t".repeat(128),
];
const MUTATIONS = "aZ09:/@._-[]%#?+= \t\n\r\u00e9\u0000\u{1F600}\uD800";

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

Deno.test("bad input: 3,000 mutated references parse or give a ReferenceSyntaxError quoting them", () => {
  const next = random(7);
  const pick = <T>(items: ArrayLike<T>): T =>
    items[Math.floor(next() * items.length)];
  let refused = 0;
  for (let i = 0; i < 3_000; i++) {
    const text = [...pick(REFERENCE_SEEDS)];
    for (let e = 1 + Math.floor(next() * 3); e > 0; e--) {
      const at = Math.floor(next() * (text.length + 1));
      const kind = next();
      if (kind < 0.3) text.splice(at, 0, pick(MUTATIONS));
      else if (kind < 0.6) text.splice(at, 1);
      else if (kind < 0.8) text[at] = pick(MUTATIONS);
      else text.splice(at, 0, ...text.slice(at, at + 8)); // duplicate a slice
    }
    const input = text.join("");
    try {
      const ref = parseReference(input);
      assert.deepEqual(parseReference(formatReference(ref)), ref, input);
    } catch (error) {
      assertTyped(error, ReferenceSyntaxError);
      assert.equal((error as ReferenceSyntaxError).input, input);
      const quoted = input.length > 512 ? `${input.slice(0, 512)}…` : input;
      assert.ok(
        (error as Error).message.startsWith(
          `Cannot parse image reference "${quoted}"`,
        ),
        (error as Error).message,
      );
      refused++;
    }
  }
  assert.ok(refused > 1000, `refused only ${refused}`);
});

const HUGE_REFERENCES: [string, string][] = [
  ["a 1 MB name", "a".repeat(1_000_000)],
  ["500,000 path components", "a/".repeat(500_000) + "b"],
  ["500,000 colons", "a:".repeat(500_000)],
  ["an unclosed IPv6 bracket", "[" + ":".repeat(100_000)],
  ["a long run of separators", "a-".repeat(300_000) + "!"],
  ["a 1 MB tag", "a:" + "t".repeat(1_000_000)],
  ["a 1 MB digest", "a@sha256:" + "f".repeat(1_000_000)],
];

for (const [what, input] of HUGE_REFERENCES) {
  Deno.test(`bad input: a reference with ${what} is refused quickly with a short message`, () => {
    const started = performance.now();
    assert.throws(() => parseReference(input), (error: unknown) => {
      assertTyped(
        error,
        ReferenceSyntaxError,
        /^Cannot parse image reference "/,
      );
      assert.equal((error as ReferenceSyntaxError).input, input);
      assert.match(
        (error as Error).message,
        new RegExp(`…" \\(${input.length} characters\\): `),
      );
      assert.ok((error as Error).message.length < 2_000);
      return true;
    });
    assert.ok(performance.now() - started < 2_000, "linear time");
  });
}

// ---------------------------------------------------------------------------------------------
// WWW-Authenticate

/** A registry asking for auth with `challenge`, whose token server answers `token()`. */
function challenging(
  challenge: string | null,
  token: () => Response = () => Response.json({ token: "good" }),
  credentials?: { username: string; password: string },
) {
  let tokenRequests = 0;
  const opener = openerOver((request) => {
    const url = new URL(request.url);
    if (url.pathname === "/token") {
      tokenRequests++;
      return token();
    }
    const authorization = request.headers.get("authorization");
    if (
      authorization === "Bearer good" ||
      authorization === `Basic ${btoa("u:right")}`
    ) {
      return new Response("ok");
    }
    return Response.json({
      errors: [{ code: "UNAUTHORIZED", message: "authentication required" }],
    }, {
      status: 401,
      headers: challenge === null ? {} : { "www-authenticate": challenge },
    });
  }, credentials);
  return { ...opener, tokenRequests: () => tokenRequests };
}

async function get(transport: Transport): Promise<Response> {
  return await transport(new Request(`${REGISTRY}/v2/app/manifests/v1`));
}

const HUGE_UNTERMINATED = 'Bearer realm="' + "x".repeat(1_000_000);

const BAD_CHALLENGES: [string, string | null, RegExp[]][] = [
  ["no header at all", null, [/401 without a WWW-Authenticate header/]],
  ["an empty header", "", [
    /Cannot parse WWW-Authenticate header "": expected an authentication scheme at position 0/,
  ]],
  ["garbage", "@@@ !!!", [
    /header "@@@ !!!": expected an authentication scheme/,
  ]],
  ["a scheme and a lone comma", "Bearer ,", [
    /expected another challenge after the comma/,
  ]],
  ["an unterminated quote (Bearer)", 'Bearer realm="https://auth.example', [
    /expected a closing quote at position 34/,
  ]],
  ["an unterminated quote (Basic)", 'Basic realm="r', [
    /header "Basic realm="r": expected a closing quote/,
  ]],
  ["a parameter without a value", "Bearer realm=", [
    /header "Bearer realm=": expected .* at position 7/,
  ]],
  ["an unquoted URL", "Bearer realm=http://127.0.0.1:5000/token", [
    /expected a comma between auth-params/,
  ]],
  ["token68", "Negotiate YWJjZA==", [/token68 is not supported/]],
  ["a Bearer challenge without realm", 'Bearer service="registry"', [
    /the Bearer challenge names no realm to get a token from: "Bearer service="registry""/,
  ]],
  ["a realm that is not a URL", 'Bearer realm="not a url"', [
    /the token realm "not a url" is not a URL/,
  ]],
  ["an ftp realm", 'Bearer realm="ftp://127.0.0.1/token"', [
    /the token realm "ftp:\/\/127\.0\.0\.1\/token" is not an http or https URL/,
  ]],
  ["a file realm", 'Bearer realm="file:///etc/passwd"', [
    /"file:\/\/\/etc\/passwd" is not an http or https URL/,
  ]],
  ["a javascript realm", 'Bearer realm="javascript:alert(1)"', [
    /"javascript:alert\(1\)" is not an http or https URL/,
  ]],
  ["a data realm", 'Bearer realm="data:,{\\"token\\":\\"x\\"}"', [
    /is not an http or https URL/,
  ]],
  [
    "a duplicate realm whose first value is bad",
    `Bearer realm="ftp://127.0.0.1/token",realm="${REALM}"`,
    [/"ftp:\/\/127\.0\.0\.1\/token" is not an http or https URL/],
  ],
  ["an unsupported scheme", 'Digest realm="r", nonce="n"', [
    /unsupported authentication scheme in "Digest realm="r", nonce="n""/,
  ]],
  ["Basic without credentials", 'Basic realm="registry"', [
    /asks for Basic credentials and none were found/,
  ]],
  ["a 1 MB unterminated header", HUGE_UNTERMINATED, [
    /expected a closing quote at position 1000014/,
    /…" \(1000014 characters\)/,
  ]],
];

for (const [what, challenge, patterns] of BAD_CHALLENGES) {
  Deno.test(`bad input: WWW-Authenticate with ${what} gives an AuthenticationError`, async () => {
    const { transport, requests, tokenRequests } = challenging(challenge);
    await assert.rejects(get(transport), (error: unknown) => {
      assertTyped(
        error,
        AuthenticationError,
        /Cannot log in to 127\.0\.0\.1:5000 for repository:app:pull: /,
        ...patterns,
      );
      const e = error as AuthenticationError;
      assert.equal(e.status, 401);
      assert.ok(e.message.length < 2_000, "the message stays short");
      if (e.message.includes("Cannot parse WWW-Authenticate")) {
        assert.ok(e.cause instanceof ChallengeSyntaxError);
      }
      return true;
    });
    assert.equal(requests.length, 1, "no token request, no second try");
    assert.equal(tokenRequests(), 0);
  });
}

Deno.test("bad input: a duplicate realm keeps the first value, as RFC 7235 parsers do", async () => {
  const { transport, tokenRequests } = challenging(
    `Bearer realm="${REALM}",realm="ftp://127.0.0.1/token",service="s"`,
  );
  assert.equal(await (await get(transport)).text(), "ok");
  assert.equal(tokenRequests(), 1);
});

Deno.test("bad input: a huge but valid challenge (10,000 params) is read and answered", async () => {
  const params = Array.from({ length: 10_000 }, (_, i) => `p${i}="${i}"`);
  const { transport } = challenging(
    `Bearer realm="${REALM}",${params.join(",")}`,
  );
  assert.equal(await (await get(transport)).text(), "ok");
});

Deno.test("bad input: a registry that refuses every token or password stops after one login, no loop", async () => {
  for (
    const [challenge, credentials] of [
      [`Bearer realm="${REALM}"`, undefined],
      ['Basic realm="r"', { username: "u", password: "wrong" }],
    ] as const
  ) {
    const { transport, requests } = challenging(
      challenge,
      () => Response.json({ token: "rejected" }),
      credentials,
    );
    await assert.rejects(
      get(transport),
      (error) =>
        assertTyped(
          error,
          AuthenticationError,
          /refused the credentials or token it asked for/,
        ),
    );
    const registryRequests = requests.filter((r) => !r.endsWith("/token"));
    assert.equal(registryRequests.length, 2, challenge);
  }
});

// ---------------------------------------------------------------------------------------------
// Token responses

const BAD_TOKENS: [string, () => Response, RegExp][] = [
  ["a body that is not JSON", () => new Response("token=abc"), /not JSON/],
  ["an HTML body", () =>
    new Response("<html><body>Sign in</body></html>", {
      headers: { "content-type": "text/html" },
    }), /not JSON/],
  ["a 200 with no body", () => new Response(null), /not JSON/],
  ["truncated JSON", () => new Response('{"token": "ab'), /not JSON/],
  [
    "a JSON array",
    () => Response.json(["good"]),
    /no "token" or "access_token" string/,
  ],
  [
    "a JSON string",
    () => Response.json("good"),
    /no "token" or "access_token"/,
  ],
  ["JSON null", () => Response.json(null), /no "token" or "access_token"/],
  ["an empty object", () => Response.json({}), /no "token" or "access_token"/],
  [
    "a numeric token",
    () => Response.json({ token: 12345 }),
    /no "token" or "access_token"/,
  ],
  [
    "an empty token",
    () => Response.json({ token: "" }),
    /no "token" or "access_token"/,
  ],
  [
    "an object token",
    () => Response.json({ access_token: { v: 1 } }),
    /no "token" or "access_token"/,
  ],
  [
    "a token with a newline",
    () => Response.json({ token: "abc\r\nX-Injected: 1" }),
    /cannot be sent in an Authorization header/,
  ],
  [
    "a token with non-ASCII characters",
    () => Response.json({ token: "tøken€" }),
    /cannot be sent in an Authorization header/,
  ],
  [
    "a token with a space",
    () => Response.json({ token: "a b" }),
    /cannot be sent in an Authorization header/,
  ],
  [
    "a declared 100 MiB body",
    () =>
      new Response(endlessBody(new Uint8Array(MiB).fill(32), 100 * MiB).body, {
        headers: { "content-length": String(100 * MiB) },
      }),
    /the token response is larger than 1048576 bytes/,
  ],
  [
    "a token server error page",
    () =>
      new Response("<html><title>503 Service Unavailable</title></html>", {
        status: 503,
      }),
    /: 503.*: the token server failed/,
  ],
];

for (const [what, token, pattern] of BAD_TOKENS) {
  Deno.test(`bad input: a token response with ${what} gives an AuthenticationError`, async () => {
    const { transport, requests } = challenging(
      `Bearer realm="${REALM}"`,
      token,
    );
    await assert.rejects(get(transport), (error: unknown) => {
      assertTyped(
        error,
        AuthenticationError,
        /Cannot log in to 127\.0\.0\.1:5000/,
        pattern,
      );
      assert.doesNotMatch(
        (error as Error).message,
        /X-Injected|tøken/,
        "never the token",
      );
      return true;
    });
    assert.equal(
      requests.length,
      2,
      "the request and the token request, no retry of the request",
    );
  });
}

Deno.test("bad input: a 100 MiB token response without Content-Length is not read whole", async () => {
  const endless = endlessBody(new Uint8Array(64 * 1024).fill(32), 100 * MiB);
  const { transport } = challenging(
    `Bearer realm="${REALM}"`,
    () => new Response(endless.body),
  );
  await assert.rejects(
    get(transport),
    (error) =>
      assertTyped(error, AuthenticationError, /larger than 1048576 bytes/),
  );
  assert.ok(endless.pulled() <= 2 * MiB, `read ${endless.pulled()} bytes`);
});

for (
  const expires of ["-5", "0", '"soon"', "1e308", "1e999", "null", '{"s":1}']
) {
  Deno.test(`bad input: expires_in ${expires} falls back or is harmless`, async () => {
    const { transport, tokenRequests } = challenging(
      `Bearer realm="${REALM}"`,
      () => new Response(`{"token":"good","expires_in":${expires}}`),
    );
    assert.equal(await (await get(transport)).text(), "ok");
    assert.equal(await (await get(transport)).text(), "ok");
    assert.equal(tokenRequests(), 1, "the token is reused");
  });
}

// ---------------------------------------------------------------------------------------------
// Manifests

const CONFIG = {
  mediaType: "application/vnd.oci.image.config.v1+json",
  digest: digestOf("{}"),
  size: 2,
};
const LAYER = {
  mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
  digest: digestOf("layer"),
  size: 5,
};
const GOOD_MANIFEST = {
  schemaVersion: 2,
  mediaType: OCI_MANIFEST_MEDIA_TYPE,
  config: CONFIG,
  layers: [LAYER],
};

/** A registry serving `body` for every manifest, with `type` as Content-Type. */
function serving(
  body: BodyInit | null,
  type: string | null = OCI_MANIFEST_MEDIA_TYPE,
) {
  // Bytes, not a string: a string body would get a text/plain Content-Type.
  return openerOver(() =>
    new Response(typeof body === "string" ? encoder.encode(body) : body, {
      headers: type === null ? {} : { "content-type": type },
    })
  );
}

const json = (value: unknown) => JSON.stringify(value);

const BAD_MANIFESTS: [string, BodyInit | null, string | null, RegExp][] = [
  [
    "not JSON",
    "this is not json",
    OCI_MANIFEST_MEDIA_TYPE,
    /the manifest is not valid JSON/,
  ],
  [
    "an empty body",
    null,
    OCI_MANIFEST_MEDIA_TYPE,
    /the manifest is not valid JSON/,
  ],
  ["HTML", "<html><body>login</body></html>", "text/html", /not valid JSON/],
  [
    "a JSON array",
    "[1,2]",
    OCI_MANIFEST_MEDIA_TYPE,
    /the manifest is not a JSON object/,
  ],
  ["a JSON string", '"manifest"', OCI_MANIFEST_MEDIA_TYPE, /not a JSON object/],
  ["JSON null", "null", OCI_MANIFEST_MEDIA_TYPE, /not a JSON object/],
  [
    "a wrong Content-Type and no mediaType",
    json({ ...GOOD_MANIFEST, mediaType: undefined }),
    "text/plain",
    /unknown manifest content type "text\/plain"/,
  ],
  [
    "no Content-Type and no mediaType",
    json({ ...GOOD_MANIFEST, mediaType: undefined }),
    null,
    /unknown manifest content type ""/,
  ],
  [
    "a wrong mediaType and no Content-Type",
    json({ ...GOOD_MANIFEST, mediaType: "application/json" }),
    null,
    /\(mediaType "application\/json"\)/,
  ],
  [
    "a mediaType that contradicts the Content-Type",
    json({ ...GOOD_MANIFEST, mediaType: OCI_INDEX_MEDIA_TYPE }),
    OCI_MANIFEST_MEDIA_TYPE,
    /the content type "application\/vnd\.oci\.image\.manifest\.v1\+json" contradicts the document's mediaType "application\/vnd\.oci\.image\.index\.v1\+json"/,
  ],
  [
    "schema version 1",
    json({ ...GOOD_MANIFEST, schemaVersion: 1 }),
    OCI_MANIFEST_MEDIA_TYPE,
    /schemaVersion is 1, not 2/,
  ],
  [
    "without a schemaVersion",
    json({ ...GOOD_MANIFEST, schemaVersion: undefined }),
    OCI_MANIFEST_MEDIA_TYPE,
    /schemaVersion is undefined, not 2/,
  ],
  [
    "no layers",
    json({ ...GOOD_MANIFEST, layers: undefined }),
    OCI_MANIFEST_MEDIA_TYPE,
    /no layers array/,
  ],
  [
    "layers that are not an array",
    json({ ...GOOD_MANIFEST, layers: { 0: LAYER } }),
    OCI_MANIFEST_MEDIA_TYPE,
    /no layers array/,
  ],
  [
    "no config",
    json({ ...GOOD_MANIFEST, config: undefined }),
    OCI_MANIFEST_MEDIA_TYPE,
    /no config descriptor/,
  ],
  [
    "a null layer",
    json({ ...GOOD_MANIFEST, layers: [LAYER, null] }),
    OCI_MANIFEST_MEDIA_TYPE,
    /the manifest is malformed: layers\[1\] is null, not a descriptor object/,
  ],
  [
    "a layer without mediaType",
    json({ ...GOOD_MANIFEST, layers: [{ ...LAYER, mediaType: undefined }] }),
    OCI_MANIFEST_MEDIA_TYPE,
    /layers\[0\]\.mediaType is undefined, not a media type/,
  ],
  [
    "a layer digest that is not a digest",
    json({ ...GOOD_MANIFEST, layers: [{ ...LAYER, digest: "nonsense" }] }),
    OCI_MANIFEST_MEDIA_TYPE,
    /layers\[0\]\.digest is "nonsense", not a digest/,
  ],
  [
    "a short sha256 digest",
    json({ ...GOOD_MANIFEST, config: { ...CONFIG, digest: "sha256:abc" } }),
    OCI_MANIFEST_MEDIA_TYPE,
    /config\.digest is not valid: .*needs 64 hex characters, got 3/,
  ],
  [
    "a path in a digest",
    json({
      ...GOOD_MANIFEST,
      layers: [{ ...LAYER, digest: "sha256:../../etc" }],
    }),
    OCI_MANIFEST_MEDIA_TYPE,
    /layers\[0\]\.digest is "sha256:\.\.\/\.\.\/etc", not a digest/,
  ],
  [
    "a negative size",
    json({ ...GOOD_MANIFEST, layers: [{ ...LAYER, size: -1 }] }),
    OCI_MANIFEST_MEDIA_TYPE,
    /layers\[0\]\.size is -1, not a non-negative integer/,
  ],
  [
    "a fractional size",
    json({ ...GOOD_MANIFEST, layers: [{ ...LAYER, size: 1.5 }] }),
    OCI_MANIFEST_MEDIA_TYPE,
    /layers\[0\]\.size is 1\.5/,
  ],
  [
    "a string size",
    json({ ...GOOD_MANIFEST, config: { ...CONFIG, size: "2" } }),
    OCI_MANIFEST_MEDIA_TYPE,
    /config\.size is "2", not a non-negative integer/,
  ],
  [
    "a size beyond 2^53",
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":' +
    json(CONFIG).replace('"size":2', '"size":1e300') + ',"layers":[]}',
    OCI_MANIFEST_MEDIA_TYPE,
    /config\.size is 1e\+300/,
  ],
  [
    "a bad subject",
    json({ ...GOOD_MANIFEST, subject: "sha256:x" }),
    OCI_MANIFEST_MEDIA_TYPE,
    /subject is "sha256:x", not a descriptor object/,
  ],
  [
    "an index without manifests",
    json({ schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE }),
    OCI_INDEX_MEDIA_TYPE,
    /the index has no manifests array/,
  ],
  [
    "an index entry with a string platform",
    json({
      schemaVersion: 2,
      mediaType: OCI_INDEX_MEDIA_TYPE,
      manifests: [{
        ...LAYER,
        mediaType: OCI_MANIFEST_MEDIA_TYPE,
        platform: "linux/amd64",
      }],
    }),
    OCI_INDEX_MEDIA_TYPE,
    /the index is malformed: manifests\[0\]\.platform is "linux\/amd64", not an object/,
  ],
  [
    "an index entry with a platform without os",
    json({
      schemaVersion: 2,
      mediaType: OCI_INDEX_MEDIA_TYPE,
      manifests: [{
        ...LAYER,
        mediaType: OCI_MANIFEST_MEDIA_TYPE,
        platform: { architecture: "amd64" },
      }],
    }),
    OCI_INDEX_MEDIA_TYPE,
    /manifests\[0\]\.platform\.os is undefined, not a string/,
  ],
  [
    "an index entry with numeric os.features",
    json({
      schemaVersion: 2,
      mediaType: OCI_INDEX_MEDIA_TYPE,
      manifests: [{
        ...LAYER,
        mediaType: OCI_MANIFEST_MEDIA_TYPE,
        platform: { os: "windows", architecture: "amd64", "os.features": [1] },
      }],
    }),
    OCI_INDEX_MEDIA_TYPE,
    /manifests\[0\]\.platform\["os\.features"\] is \[1\], not an array of strings/,
  ],
];

/** A temporary OCI layout, removed afterwards. */
async function withLayoutDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A layout holding `bytes` as a manifest: tagged `v1` with `type` as its index.json media type
 * (what a Content-Type is to a registry), or, without a type, read by digest.
 */
async function layoutServing(
  dir: string,
  bytes: Uint8Array<ArrayBuffer>,
  type: string | null,
): Promise<{ fetch: () => Promise<unknown> }> {
  const layout = await openLayout(dir);
  const digest = digestOf(bytes);
  await layout.writeBlob(digest, new Response(bytes).body!, {
    size: bytes.byteLength,
  });
  if (type !== null) {
    await layout.tag({ mediaType: type, digest, size: bytes.byteLength }, "v1");
  }
  const store = await layoutStore(layout);
  return {
    fetch: () => fetchStoreManifest(store, type === null ? digest : "v1"),
  };
}

for (const [what, body, type, pattern] of BAD_MANIFESTS) {
  Deno.test(`bad input: a manifest that is ${what} gives a ManifestError naming the request`, async () => {
    const { transport } = serving(body, type);
    await assert.rejects(
      fetchManifest(REF, { transport }),
      (error: unknown) =>
        assertTyped(
          error,
          ManifestError,
          /^GET http:\/\/127\.0\.0\.1:5000\/v2\/app\/manifests\/v1: 200: /,
          pattern,
        ),
    );
  });

  Deno.test(`bad input: a manifest that is ${what} in an OCI layout gives the same ManifestError as from a registry`, async () => {
    // Issue 13: a malformed manifest was refused from a registry and accepted from a layout.
    const bytes = typeof body === "string"
      ? encoder.encode(body)
      : new Uint8Array();
    const fromRegistry = await fetchManifest(REF, {
      transport: serving(body, type).transport,
    }).then(() => undefined, (error: unknown) => error);
    await withLayoutDir(async (dir) => {
      const { fetch } = await layoutServing(dir, bytes, type);
      await assert.rejects(fetch(), (error: unknown) => {
        assertTyped(
          error,
          ManifestError,
          /^Cannot read manifest .*blobs\/sha256\/[0-9a-f]{64}: /,
          pattern,
        );
        assertTyped(fromRegistry, ManifestError);
        const reason = (e: unknown) =>
          (e as Error).message.replace(
            /^(GET \S+: 200|Cannot read manifest \S+): /,
            "",
          );
        assert.equal(reason(error), reason(fromRegistry));
        return true;
      });
    });
  });
}

/** What registries serve that the client reads by the document: [what, body, Content-Type, media type read]. */
const LENIENT_MANIFESTS: [string, string, string, string][] = [
  [
    "as application/json",
    json(GOOD_MANIFEST),
    "application/json",
    OCI_MANIFEST_MEDIA_TYPE,
  ],
  ["as text/plain", json(GOOD_MANIFEST), "text/plain", OCI_MANIFEST_MEDIA_TYPE],
  [
    "with a charset parameter",
    json(GOOD_MANIFEST),
    `${OCI_MANIFEST_MEDIA_TYPE}; charset=utf-8`,
    OCI_MANIFEST_MEDIA_TYPE,
  ],
  [
    "a Docker manifest under the OCI manifest type",
    json({ ...GOOD_MANIFEST, mediaType: DOCKER_MANIFEST_MEDIA_TYPE }),
    OCI_MANIFEST_MEDIA_TYPE,
    OCI_MANIFEST_MEDIA_TYPE,
  ],
  [
    "a Docker manifest list under the OCI index type",
    json({
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST_LIST_MEDIA_TYPE,
      manifests: [],
    }),
    OCI_INDEX_MEDIA_TYPE,
    OCI_INDEX_MEDIA_TYPE,
  ],
];

for (const [what, body, type, mediaType] of LENIENT_MANIFESTS) {
  Deno.test(`bad input: a manifest served ${what} is read, from a registry and from a layout`, async () => {
    const fetched = await fetchManifest(REF, {
      transport: serving(body, type).transport,
    });
    assert.equal(fetched.descriptor.mediaType, mediaType);
    await withLayoutDir(async (dir) => {
      const { fetch } = await layoutServing(dir, encoder.encode(body), type);
      const read = await fetch() as typeof fetched;
      assert.equal(read.descriptor.mediaType, mediaType);
      assert.deepEqual(read.document, fetched.document);
    });
  });
}

Deno.test("bad input: unknown fields in manifests, descriptors and platforms are accepted and kept", async () => {
  const manifest = json({
    ...GOOD_MANIFEST,
    unknown: true,
    layers: [{
      ...LAYER,
      mediaType: "application/vnd.example.future+zstd",
      extra: 1,
    }],
  });
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX_MEDIA_TYPE,
    "x-vendor": { anything: [1, 2, 3] },
    manifests: [{
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      digest: digestOf(manifest),
      size: manifest.length,
      futureField: "ignored",
      platform: { os: "linux", architecture: "amd64", "x-cpu": "fast" },
    }],
  };
  const byDigest = new Map([[digestOf(manifest), manifest]]);
  const { transport } = openerOver((request) => {
    const last = new URL(request.url).pathname.split("/").pop()!;
    const body = byDigest.get(last);
    return body
      ? new Response(body, {
        headers: {
          "content-type": OCI_MANIFEST_MEDIA_TYPE + "; charset=utf-8",
        },
      })
      : new Response(json(index), {
        headers: { "content-type": OCI_INDEX_MEDIA_TYPE },
      });
  });
  const top = await fetchManifest(REF, { transport });
  assert.deepEqual(
    (top.document as unknown as Record<string, unknown>)["x-vendor"],
    { anything: [1, 2, 3] },
  );
  const resolved = await getManifest(REF, {
    transport,
    platform: { os: "linux", architecture: "amd64" },
  });
  assert.equal(resolved.descriptor.mediaType, OCI_MANIFEST_MEDIA_TYPE);
  assert.equal(
    resolved.document.layers[0].mediaType,
    "application/vnd.example.future+zstd",
  );
});

Deno.test("bad input: manifests over 4 MiB are refused, declared or endless, without reading them whole", async () => {
  const declared = openerOver(() =>
    new Response(endlessBody(new Uint8Array(MiB), 100 * MiB).body, {
      headers: {
        "content-type": OCI_MANIFEST_MEDIA_TYPE,
        "content-length": String(100 * MiB),
      },
    })
  );
  await assert.rejects(
    fetchManifest(REF, { transport: declared.transport }),
    (error) =>
      assertTyped(
        error,
        ManifestError,
        /the manifest is larger than 4194304 bytes/,
      ),
  );
  const endless = endlessBody(new TextEncoder().encode(" ".repeat(64 * 1024)));
  const streamed = openerOver(() =>
    new Response(endless.body, {
      headers: { "content-type": OCI_MANIFEST_MEDIA_TYPE },
    })
  );
  await assert.rejects(
    fetchManifest(REF, { transport: streamed.transport }),
    (error) =>
      assertTyped(
        error,
        ManifestError,
        /the manifest is larger than 4194304 bytes/,
      ),
  );
  assert.ok(endless.pulled() <= 5 * MiB, `read ${endless.pulled()} bytes`);
});

Deno.test("bad input: a manifest over 4 MiB in an OCI layout gives the same ManifestError", async () => {
  await withLayoutDir(async (dir) => {
    const big = encoder.encode(
      json({ ...GOOD_MANIFEST, padding: " ".repeat(4 * MiB) }),
    );
    const { fetch } = await layoutServing(dir, big, OCI_MANIFEST_MEDIA_TYPE);
    await assert.rejects(
      fetch(),
      (error) =>
        assertTyped(
          error,
          ManifestError,
          /^Cannot read manifest .*: the manifest is larger than 4194304 bytes$/,
        ),
    );
  });
});

/** An index listing `entries`, as bytes. */
function indexOf(...entries: object[]): string {
  return json({
    schemaVersion: 2,
    mediaType: OCI_INDEX_MEDIA_TYPE,
    manifests: entries,
  });
}

Deno.test("bad input: an index whose child points back to the index stops with a DigestMismatchError", async () => {
  // The child's digest names some other content; the registry answers it with the index itself,
  // as it does for the tag. A true digest cycle cannot be built: an index cannot hold its own hash.
  const child = digestOf("the real child");
  const index = indexOf({
    mediaType: OCI_INDEX_MEDIA_TYPE,
    digest: child,
    size: 14,
    platform: { os: "linux", architecture: "amd64" },
  });
  const { transport, requests } = openerOver(() =>
    new Response(index, { headers: { "content-type": OCI_INDEX_MEDIA_TYPE } })
  );
  await assert.rejects(
    getManifest(REF, {
      transport,
      platform: { os: "linux", architecture: "amd64" },
    }),
    (error: unknown) => {
      assertTyped(error, DigestMismatchError, new RegExp(child), /manifests/);
      assert.equal((error as DigestMismatchError).expected, child);
      assert.equal((error as DigestMismatchError).actual, digestOf(index));
      return true;
    },
  );
  assert.equal(requests.length, 2);
});

/** Ten levels of correctly hashed indexes over one manifest, by digest, and the top one. */
function tenNestedIndexes() {
  const byDigest = new Map<string, [string, string]>();
  let top = json(GOOD_MANIFEST);
  let type = OCI_MANIFEST_MEDIA_TYPE;
  byDigest.set(digestOf(top), [top, type]);
  for (let level = 0; level < 10; level++) {
    top = indexOf({
      mediaType: type,
      digest: digestOf(top),
      size: top.length,
      platform: { os: "linux", architecture: "amd64" },
    });
    type = OCI_INDEX_MEDIA_TYPE;
    byDigest.set(digestOf(top), [top, type]);
  }
  return { byDigest, top, type };
}

Deno.test("bad input: indexes nested beyond maxDepth stop with an IndexDepthError naming the depth", async () => {
  // Ten levels of correctly hashed indexes; the resolver must stop at maxDepth.
  const { byDigest, top, type } = tenNestedIndexes();
  const { transport, requests } = openerOver((request) => {
    const last = new URL(request.url).pathname.split("/").pop()!;
    const [body, contentType] = byDigest.get(last) ?? [top, type];
    return new Response(body, { headers: { "content-type": contentType } });
  });
  for (const maxDepth of [0, 2, 5]) {
    requests.length = 0;
    await assert.rejects(
      getManifest(REF, {
        transport,
        maxDepth,
        platform: { os: "linux", architecture: "amd64" },
      }),
      (error) =>
        assertTyped(
          error,
          IndexDepthError,
          new RegExp(
            `maximum depth ${maxDepth} of nested indexes reached while resolving 127\\.0\\.0\\.1:5000/app:v1`,
          ),
        ),
    );
    assert.equal(requests.length, maxDepth + 1);
  }
});

Deno.test("bad input: indexes nested beyond maxDepth in an OCI layout stop with the same IndexDepthError", async () => {
  // Issue 13: this was a RegistryError with status 200 from a registry, a RangeError from a layout.
  const { byDigest, top, type } = tenNestedIndexes();
  await withLayoutDir(async (dir) => {
    const layout = await openLayout(dir);
    for (const [digest, [body]] of byDigest) {
      const bytes = encoder.encode(body);
      await layout.writeBlob(digest, new Response(bytes).body!, {
        size: bytes.byteLength,
      });
    }
    await layout.tag(
      { mediaType: type, digest: digestOf(top), size: top.length },
      "v1",
    );
    const store = await layoutStore(layout);
    const target = await layoutStore(`${dir}/copy`);
    const platform = { os: "linux", architecture: "amd64" };
    for (const maxDepth of [0, 2, 5]) {
      await assert.rejects(
        resolveImage(store, "v1", platform, maxDepth),
        (error) => {
          assertTyped(
            error,
            IndexDepthError,
            new RegExp(
              `maximum depth ${maxDepth} of nested indexes reached while resolving oci:.*:v1`,
            ),
          );
          assert.equal((error as IndexDepthError).maxDepth, maxDepth);
          return true;
        },
      );
      for (const copyPlatform of [platform, "all" as const]) {
        await assert.rejects(
          copyImage(store, target, "v1", { platform: copyPlatform, maxDepth }),
          (error) =>
            assertTyped(
              error,
              IndexDepthError,
              new RegExp(`maximum depth ${maxDepth} of nested indexes`),
            ),
        );
      }
    }
  });
});

Deno.test("bad input: an index without the platform gives a PlatformNotFoundError listing what it has", async () => {
  const entry = (platform: object) => ({
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    digest: digestOf(json(platform)),
    size: 1,
    platform,
  });
  const index = indexOf(
    entry({ os: "linux", architecture: "amd64" }),
    entry({ os: "linux", architecture: "arm64", variant: "v8" }),
    {
      mediaType: "application/vnd.in-toto+json",
      digest: digestOf("attestation"),
      size: 1,
    },
  );
  const { transport } = serving(index, OCI_INDEX_MEDIA_TYPE);
  await assert.rejects(
    getManifest(REF, {
      transport,
      platform: { os: "linux", architecture: "s390x" },
    }),
    (error: unknown) => {
      assertTyped(
        error,
        PlatformNotFoundError,
        /Cannot find platform linux\/s390x in 127\.0\.0\.1:5000\/app:v1: available: linux\/amd64, linux\/arm64\/v8$/,
      );
      assert.equal((error as PlatformNotFoundError).available.length, 2);
      return true;
    },
  );
  const empty = serving(indexOf(), OCI_INDEX_MEDIA_TYPE);
  await assert.rejects(
    getManifest(REF, {
      transport: empty.transport,
      platform: { os: "linux", architecture: "amd64" },
    }),
    (error) => assertTyped(error, PlatformNotFoundError, /available: none$/),
  );
});

Deno.test("bad input: selectPlatform() skips index entries that are not usable instead of crashing", () => {
  // Indexes from an OCI layout on disk do not go through fetchManifest's checks.
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX_MEDIA_TYPE,
    manifests: [null, 5, "x", { platform: "linux/amd64" }, {
      platform: { os: 1 },
    }, { platform: { os: "linux", architecture: "arm" } }],
  } as unknown as ImageIndex;
  assert.throws(
    () => selectPlatform(index, { os: "linux", architecture: "amd64" }, "app"),
    (error) =>
      assertTyped(error, PlatformNotFoundError, /available: linux\/arm$/),
  );
  assert.throws(
    () =>
      selectPlatform({ manifests: "no" } as unknown as ImageIndex, {
        os: "linux",
        architecture: "amd64",
      }, "app"),
    (error) => assertTyped(error, PlatformNotFoundError, /available: none/),
  );
});

Deno.test("bad input: a config blob that is not JSON or too large gives a RegistryError", async () => {
  const garbage = "not { json";
  const { transport } = openerOver(() => new Response(garbage));
  const descriptor = {
    mediaType: CONFIG.mediaType,
    digest: digestOf(garbage),
    size: garbage.length,
  };
  await assert.rejects(
    fetchJsonBlob(REF, descriptor, { transport }),
    (error) =>
      assertTyped(
        error,
        RegistryError,
        new RegExp(
          `Cannot read blob ${descriptor.digest} of 127\\.0\\.0\\.1:5000/app:v1 as JSON: it is not valid JSON`,
        ),
      ),
  );
  await assert.rejects(
    fetchJsonBlob(REF, { ...descriptor, size: 5 * MiB }, { transport }),
    (error) =>
      assertTyped(
        error,
        RegistryError,
        /its size 5242880 is more than 4194304 bytes/,
      ),
  );
});

// ---------------------------------------------------------------------------------------------
// Registry error bodies

const ERROR_BODIES: [
  string,
  number,
  () => BodyInit | null,
  RegExp[],
  string[],
][] = [
  ["plain text", 500, () => "internal error, try later", [
    /: 500: expected 200: internal error, try later$/,
  ], []],
  [
    "HTML",
    502,
    () =>
      "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
    [/: 502: expected 200: 502 Bad Gateway 502 Bad Gateway nginx$/],
    [],
  ],
  ["an empty body", 404, () => null, [/: 404: expected 200$/], []],
  ["JSON without errors", 404, () => '{"message":"not here"}', [
    /\{"message":"not here"\}/,
  ], []],
  ["errors that is not an array", 400, () => '{"errors":"bad"}', [
    /: 400: expected 200: \{"errors":"bad"\}$/,
  ], []],
  [
    "errors with junk entries",
    403,
    () =>
      json({
        errors: [null, 5, { code: 7 }, {
          code: "DENIED",
          message: { text: "x" },
        }, { code: "TOOMANYREQUESTS", message: "slow down", detail: [1] }],
      }),
    [/: 403: expected 200: DENIED: ; TOOMANYREQUESTS: slow down$/],
    ["DENIED", "TOOMANYREQUESTS"],
  ],
  [
    "an OCI error",
    404,
    () =>
      json({
        errors: [{
          code: "MANIFEST_UNKNOWN",
          message: "manifest unknown",
          detail: { tag: "v1" },
        }],
      }),
    [/MANIFEST_UNKNOWN: manifest unknown$/],
    ["MANIFEST_UNKNOWN"],
  ],
  [
    "binary garbage with control characters",
    500,
    () =>
      new Uint8Array([0, 1, 2, 27, 91, 50, 74, 7, 0xff, 0xfe, 65, 10, 13, 66]),
    [/: expected 200: \[2J \uFFFD\uFFFDA B$/],
    [],
  ],
  ["a 1 MB body of '<'", 500, () => "<".repeat(MiB), [
    /: 500: expected 200: <{200}…$/,
  ], []],
];

for (const [what, status, body, patterns, codes] of ERROR_BODIES) {
  Deno.test(`bad input: a registry error body with ${what} gives a RegistryError with the status`, async () => {
    const { transport } = openerOver(() => new Response(body(), { status }));
    const started = performance.now();
    await assert.rejects(
      fetchManifest(REF, { transport }),
      (error: unknown) => {
        assertTyped(
          error,
          RegistryError,
          /^GET http:\/\/127\.0\.0\.1:5000\/v2\/app\/manifests\/v1: /,
          ...patterns,
        );
        const e = error as RegistryError;
        assert.equal(e.status, status);
        assert.deepEqual(e.codes.map((c) => c.code), codes);
        assert.doesNotMatch(
          e.message,
          // deno-lint-ignore no-control-regex
          /[\u0000-\u001f\u007f]/,
          "one printable line",
        );
        assert.ok(e.message.length < 500);
        return true;
      },
    );
    assert.ok(performance.now() - started < 2_000);
  });
}

Deno.test("bad input: an endless error body is read only up to its cap", async () => {
  const endless = endlessBody(new TextEncoder().encode("x".repeat(16 * 1024)));
  const { transport } = openerOver(() =>
    new Response(endless.body, { status: 500 })
  );
  await assert.rejects(
    fetchManifest(REF, { transport }),
    (error) =>
      assertTyped(
        error,
        RegistryError,
        /: 500: expected 200: x{200}…$/,
      ),
  );
  assert.ok(endless.pulled() <= 128 * 1024, `read ${endless.pulled()} bytes`);
});

Deno.test("bad input: an error body that breaks mid-stream still gives the status", async () => {
  let sent = false;
  const broken = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent) return controller.error(new TypeError("connection reset"));
      sent = true;
      controller.enqueue(new TextEncoder().encode('{"errors":[{"code":"UNKN'));
    },
  });
  const request = new Request(`${REGISTRY}/v2/app/tags/list`);
  await assert.rejects(
    ensureStatus(request, new Response(broken, { status: 503 }), 200),
    (error) =>
      assertTyped(
        error,
        RegistryError,
        /: 503: expected 200: \{"errors":\[\{"code":"UNKN$/,
      ),
  );
  const head = await registryErrorOf(
    new Request(request, { method: "HEAD" }),
    new Response(null, { status: 404 }),
  );
  assert.equal(head.status, 404);
  assert.match(
    head.message,
    /^HEAD http:\/\/127\.0\.0\.1:5000\/v2\/app\/tags\/list: 404$/,
  );
});

// ---------------------------------------------------------------------------------------------
// Tarballs

const encoder = new TextEncoder();

/** One ustar header block, built by hand so that nothing normalises the hostile parts. */
function tarHeader(
  name: string,
  options: { size?: number | string; type?: string; linkname?: string } = {},
): Uint8Array {
  const block = new Uint8Array(512);
  const put = (offset: number, length: number, text: string) =>
    block.set(encoder.encode(text).subarray(0, length), offset);
  const size = typeof options.size === "string"
    ? options.size
    : (options.size ?? 0).toString(8).padStart(11, "0") + "\0";
  put(0, 100, name);
  put(100, 8, "0000644\0");
  put(108, 8, "0000000\0");
  put(116, 8, "0000000\0");
  put(124, 12, size);
  put(136, 12, "00000000000\0");
  put(156, 1, options.type ?? "0");
  put(157, 100, options.linkname ?? "");
  put(257, 6, "ustar\0");
  put(263, 2, "00");
  return withChecksum(block);
}

function withChecksum(block: Uint8Array): Uint8Array {
  block.fill(32, 148, 156);
  const sum = block.reduce((total, byte) => total + byte, 0);
  block.set(encoder.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return block;
}

/** A file entry: header and body padded to 512 bytes. */
function tarFile(name: string, body: string): Uint8Array {
  const bytes = encoder.encode(body);
  const padded = new Uint8Array(Math.ceil(bytes.byteLength / 512) * 512);
  padded.set(bytes);
  return concat(tarHeader(name, { size: bytes.byteLength }), padded);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

const END = new Uint8Array(1024);

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A header whose size field says 1 TiB in base-256, as GNU tar writes sizes over 8 GiB. */
function terabyteHeader(name: string): Uint8Array {
  const block = tarHeader(name);
  block.fill(0, 124, 136);
  block[124] = 0x80;
  block[131] = 0x01; // 2^40
  return withChecksum(block);
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  return await new Response(
    new Response(bytes as Uint8Array<ArrayBuffer>).body!.pipeThrough(
      new CompressionStream("gzip"),
    ),
  ).bytes();
}

/** Every path under a directory, with file contents, for before/after comparisons. */
async function snapshot(dir: string, prefix = ""): Promise<string[]> {
  const lines: string[] = [];
  for await (const entry of Deno.readDir(`${dir}/${prefix}`)) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) lines.push(`${path}/`, ...await snapshot(dir, path));
    else if (entry.isSymlink) {
      lines.push(`${path} -> ${await Deno.readLink(`${dir}/${path}`)}`);
    } else lines.push(`${path}: ${await Deno.readTextFile(`${dir}/${path}`)}`);
  }
  return lines.sort();
}

type LayerCase = [
  what: string,
  bytes: () => Uint8Array | Promise<Uint8Array>,
  type: typeof UnsafeEntryError | typeof LayerFormatError,
  patterns: RegExp[],
  gzipped?: boolean,
];

const BAD_LAYERS: LayerCase[] = [
  [
    "a ../ entry",
    () => concat(tarFile("../evil", "x"), END),
    UnsafeEntryError,
    [/entry "\.\.\/evil": "\.\." would leave the target directory/],
  ],
  [
    "a nested ../ entry",
    () => concat(tarFile("a/b/../../../outside/secret", "x"), END),
    UnsafeEntryError,
    [/entry "a\/b\/\.\.\/\.\.\/\.\.\/outside\/secret"/],
  ],
  [
    "an absolute entry",
    () => concat(tarFile("/tmp/evil", "x"), END),
    UnsafeEntryError,
    [/entry "\/tmp\/evil": absolute paths are not allowed/],
  ],
  [
    "a symlink that climbs out",
    () => concat(tarHeader("up", { type: "2", linkname: "../outside" }), END),
    UnsafeEntryError,
    [/entry "up": its symlink target "\.\.\/outside" leaves the target directory/],
  ],
  [
    "a file written through a symlink",
    () =>
      concat(
        tarHeader("out", { type: "2", linkname: "/" }),
        tarFile("out/tmp/evil", "x"),
        END,
      ),
    UnsafeEntryError,
    [/entry "out\/tmp\/evil": its parent "out" is a symlink/],
  ],
  [
    "a file written through a relative symlink to the parent",
    () =>
      concat(
        tarHeader("d", { type: "5" }),
        tarHeader("d/up", { type: "2", linkname: ".." }),
        tarFile("d/up/x", "x"),
        END,
      ),
    UnsafeEntryError,
    [/its parent "up" is a symlink/],
  ],
  [
    "an empty symlink target",
    () => concat(tarHeader("s", { type: "2", linkname: "" }), END),
    UnsafeEntryError,
    [/entry "s": its symlink target is empty/],
  ],
  [
    "a hardlink out of the target",
    () =>
      concat(tarHeader("h", { type: "1", linkname: "../outside/secret" }), END),
    UnsafeEntryError,
    [/entry "h": its hardlink target "\.\.\/outside\/secret": "\.\." would leave/],
  ],
  [
    "an absolute hardlink",
    () => concat(tarHeader("h", { type: "1", linkname: "/etc/passwd" }), END),
    UnsafeEntryError,
    [/"\/etc\/passwd": absolute paths are not allowed/],
  ],
  [
    "a hardlink through a symlink",
    () =>
      concat(
        tarHeader("l", { type: "2", linkname: "/etc" }),
        tarHeader("h", { type: "1", linkname: "l/passwd" }),
        END,
      ),
    UnsafeEntryError,
    [/entry "h": its hardlink target "l\/passwd" goes through a symlink/],
  ],
  [
    "a hardlink to a directory",
    () =>
      concat(
        tarHeader("d", { type: "5" }),
        tarHeader("h", { type: "1", linkname: "d" }),
        END,
      ),
    UnsafeEntryError,
    [/entry "h": its hardlink target "d" is not a regular file/],
  ],
  [
    "a hardlink to nothing",
    () => concat(tarHeader("h", { type: "1", linkname: "missing" }), END),
    UnsafeEntryError,
    [/entry "h": its hardlink target "missing" does not exist/],
  ],
  [
    "an empty hardlink target",
    () => concat(tarHeader("h", { type: "1", linkname: "" }), END),
    UnsafeEntryError,
    [/entry "h": its hardlink target is empty/],
  ],
  [
    "a file under a file",
    () => concat(tarFile("f", "x"), tarFile("f/g", "y"), END),
    UnsafeEntryError,
    [/entry "f\/g": its parent "f" is not a directory/],
  ],
  [
    "a size of 8 GiB and a stream that ends",
    () =>
      concat(
        tarHeader("huge", { size: "77777777777\0" }),
        new Uint8Array(4096).fill(65),
      ),
    LayerFormatError,
    [/^Cannot extract layer entry "huge": the archive is damaged or ends inside this entry/],
  ],
  [
    "a size of 1 TiB and a stream that ends",
    () =>
      concat(tarFile("ok", "fine"), terabyteHeader("tib"), new Uint8Array(512)),
    LayerFormatError,
    [/^Cannot extract layer (entry "tib"|\(after entry "ok"\)): /, /truncated/],
  ],
  [
    "a size field that is not a number",
    () =>
      concat(
        tarFile("ok", "fine"),
        tarHeader("bad", { size: "12x45678901\0" }),
        END,
      ),
    LayerFormatError,
    [/^Cannot extract layer \(after entry "ok"\): the archive is damaged: /],
  ],
  [
    "a body cut short",
    () => tarFile("cut", "y".repeat(5_000)).subarray(0, 512 + 2_000),
    LayerFormatError,
    [/^Cannot extract layer entry "cut": /],
  ],
  [
    "a header cut short",
    () => concat(tarFile("ok", "fine"), tarHeader("next").subarray(0, 100)),
    LayerFormatError,
    [/^Cannot extract layer \(after entry "ok"\): the archive is damaged: /],
  ],
  [
    "only half a header",
    () => tarHeader("first").subarray(0, 300),
    LayerFormatError,
    [/^Cannot extract layer: the archive is damaged: /],
  ],
  [
    "a header with a bad checksum",
    () => {
      const h = tarHeader("x");
      h[0] = 0x79;
      return concat(h, END);
    },
    LayerFormatError,
    [/^Cannot extract layer: the archive is damaged: /],
  ],
  ["non-tar garbage", () => new Uint8Array(8192).fill(7), LayerFormatError, [
    /^Cannot extract layer: the archive is damaged: /,
  ]],
  [
    "random bytes",
    () => crypto.getRandomValues(new Uint8Array(4096)),
    LayerFormatError,
    [/^Cannot extract layer/],
  ],
  ["gzip garbage", () => new Uint8Array(8192).fill(7), LayerFormatError, [
    /^Cannot extract layer: the archive is damaged: .*gzip/,
  ], true],
  [
    "a cut gzip stream",
    async () =>
      (await gzip(concat(tarFile("a", "a".repeat(100_000)), END))).subarray(
        0,
        60,
      ),
    LayerFormatError,
    [/^Cannot extract layer/],
    true,
  ],
  [
    "a gzip stream with a bad checksum",
    async () => {
      const z = await gzip(concat(tarFile("a", "abc"), END));
      z[z.length - 6] ^= 0xff;
      return z;
    },
    LayerFormatError,
    [/gzip/],
    true,
  ],
  [
    "plain tar where gzip is expected",
    () => concat(tarFile("a", "abc"), END),
    LayerFormatError,
    [/gzip/],
    true,
  ],
];

for (const [what, bytes, type, patterns, gzipped] of BAD_LAYERS) {
  Deno.test(`bad input: a layer with ${what} gives a ${type.name} and writes nothing outside`, async () => {
    const sandbox = await Deno.makeTempDir({ prefix: "oci-bad-input-" });
    try {
      await Deno.mkdir(`${sandbox}/outside`);
      await Deno.writeTextFile(`${sandbox}/outside/secret`, "secret");
      const target = `${sandbox}/target`;
      await Deno.mkdir(target);
      const before = await snapshot(sandbox);
      await assert.rejects(
        extractLayer(
          new Response(await bytes() as Uint8Array<ArrayBuffer>).body!,
          target,
          {
            gzip: gzipped ?? false,
          },
        ),
        (error: unknown) => {
          assertTyped(error, type, ...patterns);
          if (error instanceof UnsafeEntryError) {
            assert.match(
              error.message,
              new RegExp(
                `^Cannot extract layer entry "${escapeRegExp(error.entry)}"`,
              ),
            );
          }
          return true;
        },
      );
      const after = await snapshot(sandbox);
      const outside = (lines: string[]) =>
        lines.filter((l) => !l.startsWith("target"));
      assert.deepEqual(
        outside(after),
        outside(before),
        "nothing changed outside the target",
      );
      assert.deepEqual(
        after.filter((l) => l.includes(".oci-tmp-")),
        [],
        "no temporary file left",
      );
      for (const line of after.filter((l) => l.startsWith("target/"))) {
        assert.doesNotMatch(
          line,
          /^target\/(cut|huge|tib)\b/,
          "no partial file under its final name",
        );
      }
    } finally {
      await Deno.remove(sandbox, { recursive: true });
    }
  });
}
