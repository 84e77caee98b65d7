import assert from "node:assert/strict";
import {
  blobUrl,
  endpoint,
  formatReference,
  isLoopbackHost,
  manifestUrl,
  parseMirrorUrl,
  parseReference,
  ReferenceSyntaxError,
  registryHost,
  registryUrl,
  sanitizeTag,
  TAG_REGEXP,
  tagsUrl,
  uploadsUrl,
  withDigest,
  withTag,
} from "../src/reference/reference.ts";

const H = "a".repeat(64);
const H512 = "b".repeat(128);

type Row = [
  input: string,
  registry: string,
  repository: string,
  tag?: string,
  digest?: string,
];

// Spack's own table (test/oci/image.py::test_name_parsing), with two deliberate differences:
// Docker Hub is displayed as docker.io (its API host is registry-1.docker.io), and a digest
// without a tag leaves the tag unset, as docker does.
const VALID: Row[] = [
  [
    `example.com:1234/a/b/c:tag@sha256:${H}`,
    "example.com:1234",
    "a/b/c",
    "tag",
    `sha256:${H}`,
  ],
  ["example.com:1234/a/b/c:tag", "example.com:1234", "a/b/c", "tag"],
  ["example.com:1234/a/b/c", "example.com:1234", "a/b/c", "latest"],
  [
    `example.com:1234/a/b/c@sha256:${H}`,
    "example.com:1234",
    "a/b/c",
    undefined,
    `sha256:${H}`,
  ],
  ["1.2.3.4:1234/a/b/c:tag", "1.2.3.4:1234", "a/b/c", "tag"],
  ["[2001:db8::1]:1234/a/b/c:tag", "[2001:db8::1]:1234", "a/b/c", "tag"],
  ["ubuntu:22.04", "docker.io", "library/ubuntu", "22.04"],
  ["myname/myimage:abc", "docker.io", "myname/myimage", "abc"],
  ["myname:1234/myimage:abc", "myname:1234", "myimage", "abc"],
  ["localhost/myimage:abc", "localhost", "myimage", "abc"],
  ["localhost:1234/myimage:abc", "localhost:1234", "myimage", "abc"],
  [
    "example.com/UPPERCASE/lowercase:AbC",
    "example.com",
    "uppercase/lowercase",
    "AbC",
  ],
  // The extra facts of spack's regexes (shared/reference/spack-oci.md §1.6).
  ["ubuntu", "docker.io", "library/ubuntu", "latest"],
  ["example.com:1234", "docker.io", "library/example.com", "1234"],
  [
    "123456789.dkr.ecr.us-east-1.amazonaws.com",
    "docker.io",
    "library/123456789.dkr.ecr.us-east-1.amazonaws.com",
    "latest",
  ],
  ["localhost", "docker.io", "library/localhost", "latest"],
  ["localhost:5000", "docker.io", "library/localhost", "5000"],
  ["MyOrg/Repo:Tag", "MyOrg", "repo", "Tag"],
  ["Example.COM/x", "Example.COM", "x", "latest"],
  ["docker.io/library/ubuntu", "docker.io", "library/ubuntu", "latest"],
  ["index.docker.io/library/ubuntu", "docker.io", "library/ubuntu", "latest"],
  ["registry-1.docker.io/ubuntu", "docker.io", "library/ubuntu", "latest"],
  ["docker.io/ubuntu", "docker.io", "library/ubuntu", "latest"],
  ["my_host/x", "docker.io", "my_host/x", "latest"],
  ["a__b/c", "docker.io", "a__b/c", "latest"],
  ["a--b/c", "docker.io", "a--b/c", "latest"],
  ["org/a.b-c_d", "docker.io", "org/a.b-c_d", "latest"],
  [`x/y:${"t".repeat(128)}`, "docker.io", "x/y", "t".repeat(128)],
  ["x/y:_tag", "docker.io", "x/y", "_tag"],
  ["x/y:v1.2-rc.3", "docker.io", "x/y", "v1.2-rc.3"],
  ["[::1]/x", "[::1]", "x", "latest"],
  ["[::1]:5000/x", "[::1]:5000", "x", "latest"],
  ["1.2.3.4/x", "1.2.3.4", "x", "latest"],
  [
    "ghcr.io/spack/ubuntu-jammy:latest",
    "ghcr.io",
    "spack/ubuntu-jammy",
    "latest",
  ],
  [`ghcr.io/a/b@sha512:${H512}`, "ghcr.io", "a/b", undefined, `sha512:${H512}`],
  [
    "a.b.c.d.example.com/deep/er/path/name:1",
    "a.b.c.d.example.com",
    "deep/er/path/name",
    "1",
  ],
  ["127.0.0.1:5000/cache/app:v1", "127.0.0.1:5000", "cache/app", "v1"],
];

for (const [input, registry, repository, tag, digest] of VALID) {
  Deno.test(`parseReference() reads ${JSON.stringify(input.slice(0, 70))}`, () => {
    const ref = parseReference(input);
    assert.equal(ref.registry, registry);
    assert.equal(ref.repository, repository);
    assert.equal(ref.tag, tag);
    assert.equal(ref.digest, digest);
    // Printing and parsing again gives the same reference.
    assert.deepEqual(parseReference(formatReference(ref)), ref);
  });
}

const INVALID: [string, RegExp][] = [
  [`example.com:1234/a/b/c@sha256:${H}:tag`, /digest must come after the tag/],
  ["example.com:1234/a/b/c:tag:tag", /more than one tag/],
  ["example.com:1234/a/b/c:", /tag after : is empty/],
  ["example.com:1234/a/b/c@sha256:", /sha256 needs 64 hex characters, got 0/],
  ["example.com:1234/a/b/c@", /digest after @ is empty/],
  [`example.com:1234/a/b/c@sha256:${"a".repeat(63)}`, /got 63/],
  [`example.com:1234/a/b/c@sha512:${H}`, /sha512 needs 128/],
  [`example.com:1234/a/b/c@md5:${"a".repeat(32)}`, /unknown algorithm "md5"/],
  [`example.com:1234/a/b/c@sha256:${"A".repeat(64)}`, /lowercase/],
  ["example.com:1234/a/b/c :tag", /whitespace/],
  ["example.com:1234/a/b/c: tag", /whitespace/],
  ["example.com:1234/a/b/c:tag ", /whitespace/],
  [" example.com:1234/a/b/c:tag", /whitespace/],
  ["example.com/a\tb", /whitespace/],
  ["1.2..3:1234/a/b/c:tag", /"1.2..3" is not an IPv4 address/],
  ["256.1.1.1/x", /not an IPv4 address/],
  ["hello#world:latest", /"hello#world" is not a valid path component/],
  ["a___b/c", /"a___b" is not a valid path component/],
  ["a-b-/c", /"a-b-" is not a valid path component/],
  ["x//y", /empty path component/],
  ["example.com/image/", /empty path component/],
  ["example.com/", /repository name is empty/],
  ["", /empty/],
  ["-a.com/x", /"-a.com" is not a valid registry host name/],
  ["a-.com/x", /not a valid registry host name/],
  ["example.com:99999/x", /"99999" is not a valid port/],
  ["example.com:port/x", /"port" is not a valid port/],
  ["[::1/x", /closing bracket/],
  ["[zz]:5000/x", /not an IPv6 address/],
  [`x/y:${"t".repeat(129)}`, /not a valid tag/],
  ["x/y:-tag", /not a valid tag/],
  ["x/y:.tag", /not a valid tag/],
  ["x/y:tägé", /not a valid tag/],
  [`example.com/${"a".repeat(250)}`, /longer than 255/],
];

for (const [input, reason] of INVALID) {
  Deno.test(`parseReference() refuses ${JSON.stringify(input.slice(0, 60))}`, () => {
    assert.throws(() => parseReference(input), (error: unknown) => {
      assert.ok(error instanceof ReferenceSyntaxError, String(error));
      assert.ok(error instanceof SyntaxError);
      assert.match(error.message, /^Cannot parse image reference "/);
      assert.ok(error.message.includes(`"${input}"`), error.message);
      assert.match(error.message, reason);
      return true;
    });
  });
}

Deno.test("parseReference() counts the cases of the table", () => {
  assert.ok(VALID.length + INVALID.length >= 40);
});

Deno.test("formatReference() prints canonical strings", () => {
  assert.equal(
    formatReference(parseReference("ubuntu")),
    "docker.io/library/ubuntu:latest",
  );
  assert.equal(
    formatReference(parseReference(`example.com/image:hello@sha256:${H}`)),
    `example.com/image:hello@sha256:${H}`,
  );
  assert.equal(
    formatReference(parseReference(`example.com/image@sha256:${H}`)),
    `example.com/image@sha256:${H}`,
  );
});

Deno.test("parseReference() uses HTTP for loopback and insecure registries, HTTPS otherwise", () => {
  assert.equal(parseReference("localhost:5000/a").scheme, "http");
  assert.equal(parseReference("127.0.0.1:5000/a").scheme, "http");
  assert.equal(parseReference("127.45.6.7/a").scheme, "http");
  assert.equal(parseReference("[::1]:5000/a").scheme, "http");
  assert.equal(parseReference("ghcr.io/a").scheme, "https");
  assert.equal(parseReference("128.0.0.1/a").scheme, "https");
  assert.equal(
    parseReference("registry.lan:5000/a", { insecure: true }).scheme,
    "http",
  );
  assert.equal(
    parseReference("registry.lan:5000/a", { insecure: ["registry.lan"] })
      .scheme,
    "http",
  );
  assert.equal(
    parseReference("registry.lan:5000/a", { insecure: ["registry.lan:5000"] })
      .scheme,
    "http",
  );
  assert.equal(
    parseReference("registry.lan:5000/a", { insecure: ["other.lan"] }).scheme,
    "https",
  );
});

Deno.test("isLoopbackHost() knows localhost, 127.0.0.0/8 and [::1]", () => {
  for (
    const host of [
      "localhost",
      "LOCALHOST:80",
      "127.0.0.1",
      "127.255.0.1:5000",
      "[::1]",
      "[::1]:5000",
    ]
  ) {
    assert.ok(isLoopbackHost(host), host);
  }
  for (
    const host of [
      "127.0.0.1.example.com",
      "10.0.0.1",
      "[::2]",
      "localhost.example.com",
      "ghcr.io",
    ]
  ) {
    assert.ok(!isLoopbackHost(host), host);
  }
});

Deno.test("URL builders give the distribution API paths", () => {
  const ref = parseReference(`example.com:1234/a/b:v1`);
  const pinned = withDigest(ref, `sha256:${H}`);
  assert.equal(registryHost(ref), "example.com:1234");
  assert.equal(registryUrl(ref), "https://example.com:1234");
  assert.equal(
    manifestUrl(ref),
    "https://example.com:1234/v2/a/b/manifests/v1",
  );
  assert.equal(
    manifestUrl(pinned),
    `https://example.com:1234/v2/a/b/manifests/sha256:${H}`,
  );
  assert.equal(
    manifestUrl(ref, "other"),
    "https://example.com:1234/v2/a/b/manifests/other",
  );
  assert.equal(
    blobUrl(ref, `sha256:${H}`),
    `https://example.com:1234/v2/a/b/blobs/sha256:${H}`,
  );
  assert.equal(
    uploadsUrl(ref),
    "https://example.com:1234/v2/a/b/blobs/uploads/",
  );
  assert.equal(
    uploadsUrl(ref, `sha256:${H}`),
    `https://example.com:1234/v2/a/b/blobs/uploads/?digest=sha256:${H}`,
  );
  assert.equal(tagsUrl(ref), "https://example.com:1234/v2/a/b/tags/list");
  assert.equal(
    tagsUrl(ref, { n: 5 }),
    "https://example.com:1234/v2/a/b/tags/list?n=5",
  );
  assert.equal(
    manifestUrl(parseReference("ubuntu")),
    "https://registry-1.docker.io/v2/library/ubuntu/manifests/latest",
  );
});

Deno.test("endpoint() resolves relative, host-rooted and absolute Locations", () => {
  const ref = parseReference("127.0.0.1:5000/a");
  assert.equal(endpoint(ref), "http://127.0.0.1:5000/v2/");
  assert.equal(
    endpoint(ref, "a/blobs/uploads/123?_state=x"),
    "http://127.0.0.1:5000/v2/a/blobs/uploads/123?_state=x",
  );
  assert.equal(
    endpoint(ref, "/v2/a/blobs/uploads/123"),
    "http://127.0.0.1:5000/v2/a/blobs/uploads/123",
  );
  assert.equal(
    endpoint(ref, "https://upload.example/session?sig=1"),
    "https://upload.example/session?sig=1",
  );
});

Deno.test("withTag() and withDigest() make new references", () => {
  const ref = parseReference(`ghcr.io/a/b:v1@sha256:${H}`);
  assert.deepEqual(withTag(ref, "v2"), {
    registry: "ghcr.io",
    repository: "a/b",
    tag: "v2",
    scheme: "https",
  });
  const digest = `sha256:${"c".repeat(64)}`;
  assert.equal(
    formatReference(withDigest(ref, digest)),
    `ghcr.io/a/b:v1@${digest}`,
  );
  assert.throws(() => withTag(ref, "bad tag"), ReferenceSyntaxError);
  assert.throws(() => withDigest(ref, "sha256:abc"), /got 3/);
});

Deno.test("parseMirrorUrl() reads oci:// as HTTPS and oci+http:// as HTTP, kept through withTag/withDigest", () => {
  const secure = parseMirrorUrl("oci://example.com/image");
  assert.equal(secure.scheme, "https");
  assert.equal(formatReference(secure), "example.com/image:latest");
  const plain = parseMirrorUrl("oci+http://example.com/image");
  assert.equal(plain.scheme, "http");
  assert.equal(withTag(plain, "x").scheme, "http");
  assert.equal(withDigest(plain, `sha256:${H}`).scheme, "http");
  assert.equal(
    manifestUrl(withTag(plain, "x")),
    "http://example.com/v2/image/manifests/x",
  );
  for (
    const bad of [
      "https://example.com/image",
      "example.com/image",
      "oci:/x",
      "oci+https://x/y",
    ]
  ) {
    assert.throws(
      () => parseMirrorUrl(bad),
      /must start with "oci:\/\/" or "oci\+http:\/\/"/,
    );
  }
});

Deno.test("sanitizeTag() makes valid tags out of spack-style names", () => {
  const cases = [
    "short-name@=1.2.3",
    "mpileaks-2.3-git.0123456789abcdef=develop.spack",
    "x".repeat(256),
    ".hidden",
    "-dash",
    "",
    "a b/c:d",
  ];
  for (const text of cases) assert.match(sanitizeTag(text), TAG_REGEXP, text);
  assert.equal(sanitizeTag("short-name@=1.2.3"), "short-name__1.2.3");
  const long = "a".repeat(100) + "b".repeat(100);
  assert.equal(sanitizeTag(long), "a".repeat(64) + "b".repeat(64));
});
