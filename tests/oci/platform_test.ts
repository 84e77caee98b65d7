import assert from "node:assert/strict";
import {
  formatPlatform,
  hostPlatform,
  matchPlatform,
  normalizePlatform,
  parsePlatform,
} from "../../src/oci/platform.ts";
import {
  DOCKER_MANIFEST_LIST_MEDIA_TYPE,
  DOCKER_MANIFEST_MEDIA_TYPE,
  isIndexMediaType,
  isManifestMediaType,
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "../../src/oci/media_types.ts";

Deno.test("normalizePlatform() applies architecture aliases and default variants", () => {
  const cases: [string, string][] = [
    ["linux/x86_64", "linux/amd64"],
    ["linux/x86-64", "linux/amd64"],
    ["linux/aarch64", "linux/arm64/v8"],
    ["linux/arm64", "linux/arm64/v8"],
    ["linux/arm64/8", "linux/arm64/v8"],
    ["linux/arm", "linux/arm/v7"],
    ["linux/armhf", "linux/arm/v7"],
    ["linux/armel", "linux/arm/v6"],
    ["linux/arm/v6", "linux/arm/v6"],
    ["linux/i386", "linux/386"],
    ["Linux/AMD64", "linux/amd64"],
    ["macos/arm64", "darwin/arm64/v8"],
    ["windows/amd64:10.0.17763", "windows/amd64:10.0.17763"],
  ];
  for (const [input, expected] of cases) {
    assert.equal(
      formatPlatform(normalizePlatform(parsePlatform(input))),
      expected,
      input,
    );
  }
});

Deno.test("parsePlatform() refuses what is not os/arch[/variant][:version]", () => {
  for (
    const bad of [
      "linux",
      "linux/",
      "/amd64",
      "a/b/c/d",
      "linux/amd64:",
      "linux amd64",
      "",
    ]
  ) {
    assert.throws(
      () => parsePlatform(bad),
      (e: unknown) =>
        e instanceof SyntaxError && e.message.includes(`"${bad}"`) &&
        /os\/architecture/.test(e.message),
      bad,
    );
  }
});

Deno.test("matchPlatform() compares os, architecture, variant and a wanted os.version", () => {
  const yes: [string, string][] = [
    ["linux/arm64", "linux/arm64/v8"],
    ["linux/aarch64", "linux/arm64"],
    ["linux/arm", "linux/arm/v7"],
    ["windows/amd64", "windows/amd64:10.0.20348"],
    ["windows/amd64:10.0.20348", "windows/amd64:10.0.20348"],
  ];
  const no: [string, string][] = [
    ["linux/amd64", "linux/arm64"],
    ["linux/arm/v6", "linux/arm/v7"],
    ["linux/amd64", "windows/amd64"],
    ["windows/amd64:10.0.17763", "windows/amd64:10.0.20348"],
    ["windows/amd64:10.0.17763", "windows/amd64"],
  ];
  for (const [wanted, candidate] of yes) {
    assert.ok(
      matchPlatform(parsePlatform(wanted), parsePlatform(candidate)),
      `${wanted} ~ ${candidate}`,
    );
  }
  for (const [wanted, candidate] of no) {
    assert.ok(
      !matchPlatform(parsePlatform(wanted), parsePlatform(candidate)),
      `${wanted} !~ ${candidate}`,
    );
  }
});

Deno.test("hostPlatform() is linux/<this machine's architecture>, normalised", () => {
  const host = hostPlatform();
  assert.equal(host.os, "linux");
  assert.equal(
    host.architecture,
    Deno.build.arch === "x86_64" ? "amd64" : "arm64",
  );
});

Deno.test("hostPlatform() is linux on every host OS, with the architecture normalised", () => {
  const cases: [string, string, string][] = [
    ["darwin", "aarch64", "linux/arm64/v8"],
    ["darwin", "x86_64", "linux/amd64"],
    ["windows", "x86_64", "linux/amd64"],
    ["windows", "aarch64", "linux/arm64/v8"],
    ["linux", "x86_64", "linux/amd64"],
    ["freebsd", "aarch64", "linux/arm64/v8"],
  ];
  for (const [os, arch, expected] of cases) {
    assert.equal(formatPlatform(hostPlatform({ os, arch })), expected, os);
  }
});

Deno.test("media type guards tell manifests from indexes, ignoring parameters", () => {
  assert.ok(isManifestMediaType(OCI_MANIFEST_MEDIA_TYPE));
  assert.ok(isManifestMediaType(DOCKER_MANIFEST_MEDIA_TYPE));
  assert.ok(isIndexMediaType(OCI_INDEX_MEDIA_TYPE));
  assert.ok(
    isIndexMediaType(`${DOCKER_MANIFEST_LIST_MEDIA_TYPE}; charset=utf-8`),
  );
  assert.ok(!isIndexMediaType(OCI_MANIFEST_MEDIA_TYPE));
  assert.ok(!isManifestMediaType(undefined));
  assert.ok(!isManifestMediaType("application/json"));
});
