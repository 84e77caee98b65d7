import assert from "node:assert/strict";
import { DigestError } from "../../src/oci/digest.ts";
import {
  blobUrl,
  DOCKER_HUB,
  DOCKER_HUB_API_HOST,
  endpoint,
  formatReference,
  type ImageReference,
  isLoopbackHost,
  manifestUrl,
  parseMirrorUrl,
  parseReference,
  PATH_COMPONENT_REGEXP,
  ReferenceSyntaxError,
  registryHost,
  registryUrl,
  sanitizeTag,
  TAG_REGEXP,
  tagsUrl,
  uploadsUrl,
  withDigest,
  withTag,
} from "../../src/oci/reference.ts";
import { assertTyped } from "../support/bad_input.ts";

const H = "a".repeat(64);
const H512 = "b".repeat(128);
const OTHER = `sha256:${"c".repeat(64)}`;

type Row = [
  input: string,
  registry: string,
  repository: string,
  tag?: string,
  digest?: string,
];

// Spack's own table (test/oci/image.py::test_name_parsing). Where we differ on purpose:
// Docker Hub is displayed as docker.io (spack: index.docker.io), and a digest without a tag
// leaves the tag unset (spack: "latest"), as docker does.
const SPACK_VALID: Row[] = [
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
  // Spack refuses sha512; we accept it with its 128 hex characters.
  [
    `example.com:1234/a/b/c:tag@sha512:${H512}`,
    "example.com:1234",
    "a/b/c",
    "tag",
    `sha512:${H512}`,
  ],
];

// The edge facts of spack's regexes (shared/reference/spack-oci.md §1.6), then our own cases.
const MORE_VALID: Row[] = [
  ["ubuntu", "docker.io", "library/ubuntu", "latest"],
  // A lone host:port is a Docker Hub name with a tag, as in spack and docker.
  ["example.com:1234", "docker.io", "library/example.com", "1234"],
  // The ECR trap of spack/spack#51352: a registry without repository is a Docker Hub name.
  [
    "123456789.dkr.ecr.us-east-1.amazonaws.com",
    "docker.io",
    "library/123456789.dkr.ecr.us-east-1.amazonaws.com",
    "latest",
  ],
  [
    "123456789.dkr.ecr.us-east-1.amazonaws.com/repo:1",
    "123456789.dkr.ecr.us-east-1.amazonaws.com",
    "repo",
    "1",
  ],
  ["localhost", "docker.io", "library/localhost", "latest"],
  ["localhost:5000", "docker.io", "library/localhost", "5000"],
  // An uppercase first component is a registry, since path components are lowercase.
  ["MyOrg/Repo:Tag", "MyOrg", "repo", "Tag"],
  ["Example.COM/x", "Example.COM", "x", "latest"],
  ["EXAMPLE.com:443/X", "EXAMPLE.com:443", "x", "latest"],
  // Every Docker Hub spelling is displayed as docker.io.
  ["docker.io/library/ubuntu", "docker.io", "library/ubuntu", "latest"],
  ["index.docker.io/library/ubuntu", "docker.io", "library/ubuntu", "latest"],
  ["registry-1.docker.io/ubuntu", "docker.io", "library/ubuntu", "latest"],
  ["docker.io/ubuntu", "docker.io", "library/ubuntu", "latest"],
  ["Docker.IO/Org/App", "docker.io", "org/app", "latest"],
  ["docker.io/org/app:1", "docker.io", "org/app", "1"],
  [
    `ubuntu@sha256:${H}`,
    "docker.io",
    "library/ubuntu",
    undefined,
    `sha256:${H}`,
  ],
  [
    `org/app:v1@sha256:${H}`,
    "docker.io",
    "org/app",
    "v1",
    `sha256:${H}`,
  ],
  // Spack gives library/my_host/x; docker (and we) only prefix one-component names.
  ["my_host/x", "docker.io", "my_host/x", "latest"],
  ["a-b-c/x", "docker.io", "a-b-c/x", "latest"],
  ["a__b/c", "docker.io", "a__b/c", "latest"],
  ["a--b/c", "docker.io", "a--b/c", "latest"],
  ["org/a.b-c_d", "docker.io", "org/a.b-c_d", "latest"],
  ["org/a---b", "docker.io", "org/a---b", "latest"],
  ["0/1", "docker.io", "0/1", "latest"],
  [`x/y:${"t".repeat(128)}`, "docker.io", "x/y", "t".repeat(128)],
  ["x/y:_tag", "docker.io", "x/y", "_tag"],
  ["x/y:_", "docker.io", "x/y", "_"],
  ["x/y:0", "docker.io", "x/y", "0"],
  ["x/y:v1.2-rc.3", "docker.io", "x/y", "v1.2-rc.3"],
  ["x/y:A-b.C_d", "docker.io", "x/y", "A-b.C_d"],
  ["[::1]/x", "[::1]", "x", "latest"],
  ["[::1]:5000/x", "[::1]:5000", "x", "latest"],
  ["[2001:db8::1]/a", "[2001:db8::1]", "a", "latest"],
  [
    `[::1]:5000/x:t@sha512:${H512}`,
    "[::1]:5000",
    "x",
    "t",
    `sha512:${H512}`,
  ],
  ["1.2.3.4/x", "1.2.3.4", "x", "latest"],
  ["255.255.255.255/x", "255.255.255.255", "x", "latest"],
  ["127.0.0.1:5000/cache/app:v1", "127.0.0.1:5000", "cache/app", "v1"],
  [
    "ghcr.io/spack/ubuntu-jammy:latest",
    "ghcr.io",
    "spack/ubuntu-jammy",
    "latest",
  ],
  ["ghcr.io/Org/Repo:Tag", "ghcr.io", "org/repo", "Tag"],
  [`ghcr.io/a/b@sha512:${H512}`, "ghcr.io", "a/b", undefined, `sha512:${H512}`],
  [
    "registry.gitlab.com/group/sub/project/image:main",
    "registry.gitlab.com",
    "group/sub/project/image",
    "main",
  ],
  [
    "a.b.c.d.example.com/deep/er/path/name:1",
    "a.b.c.d.example.com",
    "deep/er/path/name",
    "1",
  ],
  ["a.b/c", "a.b", "c", "latest"],
  ["my-registry.lan:5000/x", "my-registry.lan:5000", "x", "latest"],
  // Distribution's limit: 255 characters for registry, slash and repository together.
  [`example.com/${"a".repeat(243)}`, "example.com", "a".repeat(243), "latest"],
];

const VALID: Row[] = [...SPACK_VALID, ...MORE_VALID];

for (const [input, registry, repository, tag, digest] of VALID) {
  Deno.test(`parseReference() reads ${JSON.stringify(input.slice(0, 70))}`, () => {
    const ref = parseReference(input);
    assert.equal(ref.registry, registry);
    assert.equal(ref.repository, repository);
    assert.equal(ref.tag, tag);
    assert.equal(ref.digest, digest);
    assert.equal("tag" in ref, tag !== undefined);
    assert.equal("digest" in ref, digest !== undefined);
    // Printing and parsing again gives the same reference.
    assert.deepEqual(parseReference(formatReference(ref)), ref);
  });
}

// Spack's failures (test_parsing_failure and test_image_reference_invalid), then ours. Each row
// gives a pattern for the reason in the message.
const INVALID: [input: string, reason: RegExp][] = [
  [
    `example.com:1234/a/b/c@sha256:${H}:tag`,
    /the tag ":tag" comes after the digest/,
  ],
  ["example.com:1234/a/b/c:tag:tag", /it has more than one tag$/],
  ["example.com:1234/a/b/c:", /the tag after : is empty$/],
  [
    "example.com:1234/a/b/c@sha256:",
    /the digest "sha256:" is not valid: sha256 needs 64 hex characters, got 0$/,
  ],
  [`example.com:1234/a/b/c@sha512:${H}`, /sha512 needs 128 hex characters/],
  [`example.com:1234/a/b/c@sha256:${"a".repeat(63)}`, /got 63$/],
  ["example.com:1234/a/b/c :tag", /it contains whitespace$/],
  ["example.com:1234/a/b/c: tag", /it contains whitespace$/],
  ["example.com:1234/a/b/c:tag ", /it contains whitespace$/],
  [" example.com:1234/a/b/c:tag", /it contains whitespace$/],
  ["1.2..3:1234/a/b/c:tag", /"1\.2\.\.3" is not an IPv4 address/],
  [" example.com/image", /it contains whitespace$/],
  ["hello#world:latest", /"hello#world" is not a valid path component/],
  // Ours.
  ["", /it is empty$/],
  ["example.com/a\tb", /whitespace/],
  ["example.com/a\nb", /whitespace/],
  ["example.com:1234/a/b/c@", /the digest after @ is empty$/],
  ["a/b@sha256:x@sha256:y", /more than one digest/],
  [`a/b@sha512:${H512.slice(1)}`, /sha512 needs 128 hex characters, got 127/],
  [`a/b@md5:${"a".repeat(32)}`, /unknown algorithm "md5"/],
  [`a/b@sha256:${"A".repeat(64)}`, /the hex must be lowercase/],
  [`a/b@${H}`, /missing algorithm/],
  ["256.1.1.1/x", /"256\.1\.1\.1" is not an IPv4 address/],
  ["1.2.3/x", /"1\.2\.3" is not an IPv4 address/],
  ["-a.com/x", /"-a\.com" is not a host name/],
  ["a-.com/x", /"a-\.com" is not a host name/],
  ["a_b.com/x", /"a_b\.com" is not a host name/],
  ["example..com/x", /not a host name/],
  [
    "My_Org/x",
    /"My_Org" is not a host name.*a first component with uppercase letters names a registry/,
  ],
  ["example.com:99999/x", /"99999" is not a port number/],
  ["example.com:port/x", /"port" is not a port number/],
  ["example.com:/x", /"" is not a port number/],
  ["a:b/c", /the registry "a:b" is not valid: "b" is not a port number/],
  ["[::1/x", /no closing bracket/],
  ["[zz]:5000/x", /"\[zz\]" is not an IPv6 address/],
  ["[1:2:3:4:5:6:7:8:9]/x", /is not an IPv6 address/],
  ["[::1]x/y", /only a :port may follow the IPv6 address/],
  ["[::1]:5000", /must be followed by \/repository/],
  ["a___b/c", /"a___b" is not a valid path component/],
  ["a-b-/c", /"a-b-" is not a valid path component/],
  ["example.com/Hello#World", /"Hello#World" is not a valid path component/],
  ["example.com/-x", /"-x" is not a valid path component/],
  ["x//y", /empty path component/],
  ["/x", /empty path component/],
  ["example.com/image/", /empty path component/],
  ["example.com/", /the repository name is empty$/],
  [":tag", /the repository name is empty$/],
  [`@sha256:${H}`, /the repository name is empty$/],
  [`x/y:${"t".repeat(129)}`, /it has 129 characters, more than 128$/],
  ["x/y:-tag", /the tag "-tag" is not valid: it must start with/],
  ["x/y:.tag", /the tag "\.tag" is not valid: it must start with/],
  // Spack accepts non-ASCII word characters in tags; registries (Go's \w) do not.
  ["x/y:tägé", /the tag "tägé" is not valid: it contains "ä"/],
  ["a/b:c/d", /the tag "c\/d" is not valid: it contains "\/"/],
  [`example.com/${"a".repeat(244)}`, /has 256 characters, more than 255$/],
  // The library/ prefix counts too, as in docker.
  ["a".repeat(240), /has 258 characters, more than 255$/],
];

for (const [input, reason] of INVALID) {
  Deno.test(`parseReference() refuses ${JSON.stringify(input.slice(0, 60))}`, () => {
    assert.throws(() => parseReference(input), (error: unknown) => {
      assert.ok(error instanceof ReferenceSyntaxError, String(error));
      assert.ok(error instanceof SyntaxError);
      assert.equal(error.name, "ReferenceSyntaxError");
      assert.equal(error.input, input);
      assert.ok(
        error.message.startsWith(`Cannot parse image reference "${input}": `),
        error.message,
      );
      assert.equal(
        error.message,
        `Cannot parse image reference "${input}": ${error.reason}`,
      );
      assert.match(error.reason, reason);
      assert.ok(!error.message.endsWith("."), error.message);
      return true;
    });
  });
}

/**
 * One valid reference broken in one place, each way it must then be refused, with the reason
 * the message must give.
 */
function brokenVariants(
  input: string,
  digest?: string,
): [broken: string, reason: RegExp][] {
  const second = /it has more than one digest$/;
  const variants: [string, RegExp][] = [
    [`${input} `, /it contains whitespace$/],
    [` ${input}`, /it contains whitespace$/],
    [`${input}\t`, /it contains whitespace$/],
    [`${input}@`, digest ? second : /the digest after @ is empty$/],
    [
      `${input}@sha256:${H.toUpperCase()}`,
      digest ? second : /the hex must be lowercase$/,
    ],
    [
      `${input}@sha256:${H.slice(1)}`,
      digest ? second : /sha256 needs 64 hex characters, got 63$/,
    ],
    [
      `${input}@md5:${H.slice(32)}`,
      digest ? second : /unknown algorithm "md5"/,
    ],
    [
      `${input}#`,
      digest
        ? /the encoded part is not hex$/
        // A row at a length limit goes over it first.
        : /the tag "[^"]*#" is not valid: it contains "#"|"[^"]*#" is not a valid path component|, more than (128|255)$/,
    ],
  ];
  if (digest !== undefined) {
    const [algorithm, hex] = digest.split(":");
    const length = hex.length;
    const other = algorithm === "sha256" ? "sha512" : "sha256";
    variants.push(
      [
        input.replace(digest, `${algorithm}:${hex.toUpperCase()}`),
        /the hex must be lowercase$/,
      ],
      [
        input.replace(digest, `${digest}0`),
        new RegExp(`needs ${length} hex characters, got ${length + 1}$`),
      ],
      [input.replace(digest, `${digest}x`), /the encoded part is not hex$/],
      [
        input.replace(digest, digest.slice(0, -1)),
        new RegExp(`needs ${length} hex characters, got ${length - 1}$`),
      ],
      [
        input.replace(digest, `${other}:${hex}`),
        new RegExp(`${other} needs \\d+ hex characters, got ${length}$`),
      ],
      [input.replace(digest, hex), /missing algorithm/],
    );
  }
  return variants;
}

Deno.test("parseReference() refuses every valid reference of the table broken in one place, saying why", () => {
  let refused = 0;
  for (const [input, , , , digest] of VALID) {
    for (const [broken, reason] of brokenVariants(input, digest)) {
      assert.throws(
        () => parseReference(broken),
        (error: unknown) => {
          assert.ok(
            error instanceof ReferenceSyntaxError,
            `${JSON.stringify(broken)}: ${error}`,
          );
          assert.equal(error.input, broken);
          assert.match(error.reason, reason, JSON.stringify(broken));
          return true;
        },
        `${JSON.stringify(broken)} (from ${
          JSON.stringify(input)
        }) was accepted`,
      );
      refused++;
    }
  }
  // Every row gave its variants: none was skipped by a loop that stopped early.
  const withDigest = VALID.filter((row) => row[4] !== undefined).length;
  assert.equal(refused, VALID.length * 8 + withDigest * 6);
});

Deno.test("parseReference() errors say Cannot parse image reference for spack's invalid inputs", () => {
  for (const input of ["hello#world:latest", " example.com/image"]) {
    assert.throws(
      () => parseReference(input),
      (error: Error) => error.message.includes("Cannot parse image reference"),
    );
  }
});

Deno.test("parseReference() keeps the digest error as the cause", () => {
  assert.throws(() => parseReference("a/b@sha256:abc"), (error: unknown) => {
    assert.ok(error instanceof ReferenceSyntaxError);
    assert.ok(error.cause instanceof DigestError);
    return true;
  });
  assert.throws(() => parseReference("a/b:"), (error: unknown) => {
    assert.ok(error instanceof ReferenceSyntaxError);
    assert.equal(error.cause, undefined);
    return true;
  });
});

Deno.test("parseReference() defaults docker.io, library/ and latest", () => {
  assert.deepEqual(parseReference("alpine"), {
    registry: DOCKER_HUB,
    repository: "library/alpine",
    tag: "latest",
    scheme: "https",
  });
});

Deno.test("parseReference() leaves the tag unset when only a digest is given", () => {
  assert.deepEqual(parseReference(`ghcr.io/a/b@sha256:${H}`), {
    registry: "ghcr.io",
    repository: "a/b",
    digest: `sha256:${H}`,
    scheme: "https",
  });
});

Deno.test("formatReference() prints canonical strings", () => {
  const cases: [string, string][] = [
    ["ubuntu", "docker.io/library/ubuntu:latest"],
    ["ubuntu:22.04", "docker.io/library/ubuntu:22.04"],
    ["index.docker.io/org/app", "docker.io/org/app:latest"],
    ["registry-1.docker.io/ubuntu:1", "docker.io/library/ubuntu:1"],
    ["example.com/UPPER/Lower:AbC", "example.com/upper/lower:AbC"],
    [
      `example.com/image:hello@sha256:${H}`,
      `example.com/image:hello@sha256:${H}`,
    ],
    [`example.com/image@sha256:${H}`, `example.com/image@sha256:${H}`],
    ["[::1]:5000/x", "[::1]:5000/x:latest"],
    ["MyOrg/Repo", "MyOrg/repo:latest"],
  ];
  for (const [input, canonical] of cases) {
    assert.equal(formatReference(parseReference(input)), canonical, input);
    // The canonical string is a fixed point.
    assert.equal(formatReference(parseReference(canonical)), canonical);
  }
});

Deno.test("formatReference() prints a reference built by hand", () => {
  const ref: ImageReference = {
    registry: "ghcr.io",
    repository: "org/app",
    scheme: "https",
  };
  assert.equal(formatReference(ref), "ghcr.io/org/app");
  assert.equal(
    formatReference({ ...ref, digest: OTHER }),
    `ghcr.io/org/app@${OTHER}`,
  );
});

Deno.test("parseReference() uses HTTP for loopback registries on any port", () => {
  for (
    const input of [
      "localhost/a",
      "localhost:5000/a",
      "LOCALHOST:5000/a",
      "127.0.0.1/a",
      "127.0.0.1:5000/a",
      "127.45.6.7:1/a",
      "[::1]/a",
      "[::1]:5000/a",
      "[0:0:0:0:0:0:0:1]:5000/a",
    ]
  ) {
    assert.equal(parseReference(input).scheme, "http", input);
  }
  for (
    const input of [
      "ubuntu",
      "ghcr.io/a",
      "128.0.0.1/a",
      "10.0.0.1:5000/a",
      "[::2]/a",
      "localhost.example.com/a",
      "127.0.0.1.nip.io/a",
    ]
  ) {
    assert.equal(parseReference(input).scheme, "https", input);
  }
});

Deno.test("parseReference() uses HTTP for registries marked insecure", () => {
  const scheme = (input: string, insecure: boolean | string[]) =>
    parseReference(input, { insecure }).scheme;
  assert.equal(scheme("registry.lan:5000/a", true), "http");
  assert.equal(scheme("ubuntu", true), "http");
  assert.equal(scheme("registry.lan:5000/a", false), "https");
  assert.equal(scheme("localhost:5000/a", false), "http");
  // A name without port matches every port; a name with port only that port.
  assert.equal(scheme("registry.lan:5000/a", ["registry.lan"]), "http");
  assert.equal(scheme("registry.lan/a", ["registry.lan"]), "http");
  assert.equal(scheme("registry.lan:5000/a", ["registry.lan:5000"]), "http");
  assert.equal(scheme("registry.lan:5001/a", ["registry.lan:5000"]), "https");
  assert.equal(scheme("registry.lan/a", ["registry.lan:5000"]), "https");
  assert.equal(scheme("Registry.LAN:5000/a", ["registry.lan"]), "http");
  assert.equal(scheme("[fd00::1]:5000/a", ["[fd00::1]"]), "http");
  assert.equal(scheme("registry.lan:5000/a", ["other.lan"]), "https");
  assert.equal(scheme("registry.lan:5000/a", []), "https");
  // Docker Hub spellings match each other.
  assert.equal(scheme("ubuntu", ["index.docker.io"]), "http");
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
      "::1",
      "[0:0:0:0:0:0:0:1]",
      "[::ffff:127.0.0.1]:5000",
    ]
  ) {
    assert.ok(isLoopbackHost(host), host);
  }
  for (
    const host of [
      "",
      "127.0.0.1.example.com",
      "10.0.0.1",
      "128.0.0.1",
      "[::2]",
      "[::ffff:10.0.0.1]",
      "localhost.example.com",
      "ghcr.io",
      "user@localhost",
      "example.com/localhost",
      "[::1",
    ]
  ) {
    assert.ok(!isLoopbackHost(host), host);
  }
});

Deno.test("registryHost() and registryUrl() send Docker Hub to registry-1.docker.io", () => {
  const hub = parseReference("ubuntu");
  assert.equal(hub.registry, "docker.io");
  assert.equal(registryHost(hub), DOCKER_HUB_API_HOST);
  assert.equal(registryUrl(hub), "https://registry-1.docker.io");
  assert.equal(
    registryHost({ ...hub, registry: "index.docker.io" }),
    "registry-1.docker.io",
  );
  const local = parseReference("[::1]:5000/a");
  assert.equal(registryHost(local), "[::1]:5000");
  assert.equal(registryUrl(local), "http://[::1]:5000");
  assert.equal(
    registryUrl(parseReference("example.com:1234/a")),
    "https://example.com:1234",
  );
});

Deno.test("manifestUrl() uses the digest, else the tag, else an override", () => {
  const ref = parseReference("example.com:1234/a/b:v1");
  const base = "https://example.com:1234/v2/a/b/manifests";
  assert.equal(manifestUrl(ref), `${base}/v1`);
  assert.equal(
    manifestUrl(withDigest(ref, `sha256:${H}`)),
    `${base}/sha256:${H}`,
  );
  assert.equal(manifestUrl(ref, "other"), `${base}/other`);
  assert.equal(manifestUrl(ref, OTHER), `${base}/${OTHER}`);
  assert.equal(
    manifestUrl(parseReference("ubuntu")),
    "https://registry-1.docker.io/v2/library/ubuntu/manifests/latest",
  );
  assert.equal(
    manifestUrl({ registry: "ghcr.io", repository: "a", scheme: "https" }),
    "https://ghcr.io/v2/a/manifests/latest",
  );
});

Deno.test("manifestUrl() refuses an override that is neither a tag nor a digest", () => {
  const ref = parseReference("ghcr.io/a/b");
  assert.throws(() => manifestUrl(ref, "../../x"), ReferenceSyntaxError);
  assert.throws(() => manifestUrl(ref, ""), /the tag is empty/);
  assert.throws(() => manifestUrl(ref, "sha256:../x"), DigestError);
});

Deno.test("blobUrl() builds blob URLs and checks the digest", () => {
  const ref = parseReference(`example.com:1234/a/b:v1@sha256:${H}`);
  assert.equal(
    blobUrl(ref, OTHER),
    `https://example.com:1234/v2/a/b/blobs/${OTHER}`,
  );
  assert.equal(
    blobUrl(parseReference("localhost:5000/x"), `sha512:${H512}`),
    `http://localhost:5000/v2/x/blobs/sha512:${H512}`,
  );
  assert.throws(() => blobUrl(ref, "sha256:x"), DigestError);
  assert.throws(() => blobUrl(ref, "../../etc"), DigestError);
});

Deno.test("uploadsUrl() ends in a slash and adds ?digest= for a single POST", () => {
  const ref = parseReference("example.com:1234/a/b");
  assert.equal(
    uploadsUrl(ref),
    "https://example.com:1234/v2/a/b/blobs/uploads/",
  );
  assert.equal(
    uploadsUrl(ref, `sha256:${H}`),
    `https://example.com:1234/v2/a/b/blobs/uploads/?digest=sha256:${H}`,
  );
  assert.throws(() => uploadsUrl(ref, "sha256:"), DigestError);
});

Deno.test("tagsUrl() adds n and last, encoded", () => {
  const ref = parseReference("example.com:1234/a/b");
  const base = "https://example.com:1234/v2/a/b/tags/list";
  assert.equal(tagsUrl(ref), base);
  assert.equal(tagsUrl(ref, {}), base);
  assert.equal(tagsUrl(ref, { n: 5 }), `${base}?n=5`);
  assert.equal(tagsUrl(ref, { last: "v1.0" }), `${base}?last=v1.0`);
  assert.equal(
    tagsUrl(ref, { n: 2, last: "a+b&c" }),
    `${base}?n=2&last=a%2Bb%26c`,
  );
  for (const n of [0, -1, 1.5, Number.NaN, Infinity]) {
    assert.throws(() => tagsUrl(ref, { n }), RangeError, String(n));
  }
  assert.throws(
    () => tagsUrl(ref, { n: 0 }),
    /^RangeError: Cannot list the tags of example\.com:1234\/a\/b: the page size must be a positive integer, got 0$/,
  );
});

Deno.test("endpoint() resolves relative, host-rooted and absolute Locations", () => {
  const ref = parseReference("127.0.0.1:5000/a");
  assert.equal(endpoint(ref), "http://127.0.0.1:5000/v2/");
  assert.equal(endpoint(ref, ""), "http://127.0.0.1:5000/v2/");
  assert.equal(
    endpoint(ref, "a/blobs/uploads/123?_state=x"),
    "http://127.0.0.1:5000/v2/a/blobs/uploads/123?_state=x",
  );
  assert.equal(
    endpoint(ref, "/v2/a/blobs/uploads/123"),
    "http://127.0.0.1:5000/v2/a/blobs/uploads/123",
  );
  assert.equal(
    endpoint(ref, "/other/root"),
    "http://127.0.0.1:5000/other/root",
  );
  assert.equal(
    endpoint(ref, "https://upload.example/session?sig=1"),
    "https://upload.example/session?sig=1",
  );
  assert.equal(
    endpoint(parseReference("ubuntu"), "/v2/library/ubuntu/tags/list?n=1"),
    "https://registry-1.docker.io/v2/library/ubuntu/tags/list?n=1",
  );
  assert.equal(
    endpoint(parseReference("[::1]:5000/a"), "x"),
    "http://[::1]:5000/v2/x",
  );
});

Deno.test("withTag() sets the tag, drops the digest and keeps the scheme", () => {
  const ref = parseReference(`ghcr.io/a/b:v1@sha256:${H}`);
  assert.deepEqual(withTag(ref, "v2"), {
    registry: "ghcr.io",
    repository: "a/b",
    tag: "v2",
    scheme: "https",
  });
  assert.equal(withTag(parseReference("localhost:5000/a"), "x").scheme, "http");
  assert.deepEqual(ref, parseReference(`ghcr.io/a/b:v1@sha256:${H}`));
});

Deno.test("withTag() refuses invalid tags with the reason", () => {
  const ref = parseReference("ghcr.io/a/b");
  const cases: [string, RegExp][] = [
    ["", /the tag is empty$/],
    ["bad tag", /it contains " "/],
    ["-x", /must start with a letter, digit or "_"$/],
    ["a/b", /it contains "\/"/],
    ["t".repeat(129), /129 characters/],
  ];
  for (const [tag, reason] of cases) {
    assert.throws(() => withTag(ref, tag), (error: unknown) => {
      assert.ok(error instanceof ReferenceSyntaxError);
      assert.equal(error.input, `ghcr.io/a/b:${tag}`);
      assert.match(error.reason, reason);
      return true;
    });
  }
});

Deno.test("withDigest() pins the digest and keeps tag and scheme", () => {
  const ref = parseReference(`ghcr.io/a/b:v1@sha256:${H}`);
  assert.equal(
    formatReference(withDigest(ref, OTHER)),
    `ghcr.io/a/b:v1@${OTHER}`,
  );
  assert.equal(
    withDigest(parseReference("localhost/a"), `sha512:${H512}`).digest,
    `sha512:${H512}`,
  );
  assert.equal(withDigest(parseReference("localhost/a"), OTHER).scheme, "http");
  assert.throws(() => withDigest(ref, "sha256:abc"), DigestError);
  assert.throws(() => withDigest(ref, "sha256:abc"), /got 3/);
});

Deno.test("parseMirrorUrl() reads oci:// as HTTPS and oci+http:// as HTTP", () => {
  assert.deepEqual(parseMirrorUrl("oci://example.com/image"), {
    registry: "example.com",
    repository: "image",
    tag: "latest",
    scheme: "https",
  });
  assert.deepEqual(parseMirrorUrl("oci+http://example.com:5000/org/cache:v1"), {
    registry: "example.com:5000",
    repository: "org/cache",
    tag: "v1",
    scheme: "http",
  });
  // The URL's scheme wins, also for loopback hosts.
  assert.equal(parseMirrorUrl("oci://localhost:5000/x").scheme, "https");
  assert.equal(parseMirrorUrl("oci+http://[::1]:5000/x").scheme, "http");
  // Docker defaults apply after the scheme, as in spack.
  assert.equal(
    formatReference(parseMirrorUrl("oci://ubuntu")),
    "docker.io/library/ubuntu:latest",
  );
});

Deno.test("parseMirrorUrl() keeps the http scheme through withTag and withDigest", () => {
  const plain = parseMirrorUrl("oci+http://example.com/image");
  assert.equal(withTag(plain, "x").scheme, "http");
  assert.equal(withDigest(plain, `sha256:${H}`).scheme, "http");
  assert.equal(
    manifestUrl(withTag(plain, "x")),
    "http://example.com/v2/image/manifests/x",
  );
  assert.equal(
    blobUrl(withDigest(plain, `sha256:${H}`), OTHER),
    `http://example.com/v2/image/blobs/${OTHER}`,
  );
});

Deno.test("parseMirrorUrl() refuses other schemes and bad references, quoting the URL", () => {
  for (
    const url of [
      "https://example.com/image",
      "http://example.com/image",
      "example.com/image",
      "OCI://example.com/image",
      "oci:/x",
      "oci+https://x/y",
      "file:///tmp/mirror",
    ]
  ) {
    assert.throws(() => parseMirrorUrl(url), (error: unknown) => {
      assert.ok(error instanceof ReferenceSyntaxError);
      assert.equal(
        error.message,
        `Cannot parse image reference "${url}": a mirror URL must start with "oci://" or "oci+http://"`,
      );
      return true;
    });
  }
  const cases: [string, RegExp][] = [
    ["oci://", /no reference follows the scheme$/],
    ["oci://example.com/a b", /whitespace$/],
    ["oci://example.com/cache/", /empty path component/],
    ["oci+http://example.com/a:b:c", /more than one tag$/],
  ];
  for (const [url, reason] of cases) {
    assert.throws(() => parseMirrorUrl(url), (error: unknown) => {
      assert.ok(error instanceof ReferenceSyntaxError);
      assert.equal(error.input, url);
      assert.match(error.reason, reason);
      return true;
    });
  }
});

Deno.test("sanitizeTag() makes valid tags like spack's ensure_valid_tag", () => {
  const cases: [string, string][] = [
    ["short-name@=1.2.3", "short-name__1.2.3"],
    [
      "python-3.11.2-65txfcpqbmpawclvtasuog4yzmxwaoia.spack",
      "python-3.11.2-65txfcpqbmpawclvtasuog4yzmxwaoia.spack",
    ],
    [
      "mpileaks-git.0123456789abcdef=develop-abc.spack",
      "mpileaks-git.0123456789abcdef_develop-abc.spack",
    ],
    ["a b/c:d", "a_b_c_d"],
    // Beyond spack: the first character is made a word character, and tags stay ASCII.
    [".hidden", "_hidden"],
    ["-dash", "_dash"],
    ["tägé", "t_g_"],
    ["", "_"],
  ];
  for (const [text, tag] of cases) assert.equal(sanitizeTag(text), tag, text);
});

Deno.test("sanitizeTag() keeps the first and last 64 characters of long text", () => {
  const long = "a".repeat(100) + "b".repeat(100);
  assert.equal(sanitizeTag(long), "a".repeat(64) + "b".repeat(64));
  assert.equal(sanitizeTag("x".repeat(128)), "x".repeat(128));
  const spec = `${"n".repeat(120)}-1.0-${"h".repeat(32)}.spack`;
  assert.ok(sanitizeTag(spec).endsWith(`-${"h".repeat(32)}.spack`));
  assert.equal(sanitizeTag(spec).length, 128);
});

Deno.test("sanitizeTag() output always matches TAG_REGEXP and valid tags pass unchanged", () => {
  const texts = [
    "",
    ".",
    "-",
    "@",
    "x".repeat(300),
    ".".repeat(300),
    "a+b=c~d^e",
    "日本語",
  ];
  for (const text of texts) assert.match(sanitizeTag(text), TAG_REGEXP, text);
  for (const tag of ["v1", "_x", "A.b-C_d", "t".repeat(128)]) {
    assert.equal(sanitizeTag(tag), tag);
  }
});

Deno.test("PATH_COMPONENT_REGEXP and TAG_REGEXP match whole strings", () => {
  assert.ok(PATH_COMPONENT_REGEXP.test("a.b_c__d---e"));
  assert.ok(!PATH_COMPONENT_REGEXP.test("a/b"));
  assert.ok(!PATH_COMPONENT_REGEXP.test("A"));
  assert.ok(!PATH_COMPONENT_REGEXP.test("a."));
  assert.ok(TAG_REGEXP.test("t".repeat(128)));
  assert.ok(!TAG_REGEXP.test("t".repeat(129)));
  assert.ok(!TAG_REGEXP.test("a b"));
});

// Bad input from the outside world (issue 7, item 3): huge references.

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
