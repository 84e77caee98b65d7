/**
 * Image references (`[registry/]repository[:tag][@digest]`), registry API URLs, and spack-style
 * `oci://` / `oci+http://` mirror URLs.
 *
 * The grammar is distribution's (`distribution/reference`), with Docker's defaults. Where spack's
 * `spack.oci.image` differs, this module follows Docker: Docker Hub is displayed as `docker.io`
 * (its API host is `registry-1.docker.io`), `library/` is only added to one-component names, a
 * digest without a tag leaves the tag unset, tags are ASCII, and `sha512` digests are accepted.
 *
 * @example Parse, print and build a URL
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatReference, manifestUrl, parseReference } from "./reference.ts";
 * const ref = parseReference("ubuntu:22.04");
 * assert.equal(formatReference(ref), "docker.io/library/ubuntu:22.04");
 * assert.equal(manifestUrl(ref), "https://registry-1.docker.io/v2/library/ubuntu/manifests/22.04");
 * ```
 *
 * @module
 */
import { DigestError, formatDigest, parseDigest } from "./digest.ts";

/**
 * A parsed image reference: a plain, readonly object.
 *
 * @example The parts of a reference
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ImageReference, parseReference } from "./reference.ts";
 * const ref: ImageReference = parseReference("localhost:5000/cache/app:v1");
 * assert.deepEqual(ref, {
 *   registry: "localhost:5000", repository: "cache/app", tag: "v1", scheme: "http",
 * });
 * ```
 */
export interface ImageReference {
  /** The registry as displayed, with its port: `docker.io`, `ghcr.io`, `[::1]:5000`. */
  readonly registry: string;
  /** The repository path, lowercase: `library/ubuntu`. */
  readonly repository: string;
  /** The tag, case kept; undefined when only a digest was given. */
  readonly tag?: string;
  /** The digest, `algorithm:hex`. */
  readonly digest?: string;
  /** How to reach the registry. */
  readonly scheme: "https" | "http";
}

/**
 * Options of {@linkcode parseReference}.
 *
 * @example Reach a registry on the local network over plain HTTP
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ParseReferenceOptions, parseReference } from "./reference.ts";
 * const options: ParseReferenceOptions = { insecure: ["registry.lan:5000"] };
 * assert.equal(parseReference("registry.lan:5000/app", options).scheme, "http");
 * ```
 */
export interface ParseReferenceOptions {
  /**
   * Registries reached over plain HTTP besides loopback ones: `true` for all, or a list of
   * registry names, with or without port (a name without port matches every port).
   * @default {false}
   */
  readonly insecure?: boolean | readonly string[];
}

/**
 * The display name of Docker Hub, which references without a registry point to.
 *
 * @example The registry of a short name
 * ```ts
 * import assert from "node:assert/strict";
 * import { DOCKER_HUB, parseReference } from "./reference.ts";
 * assert.equal(parseReference("alpine").registry, DOCKER_HUB);
 * ```
 */
export const DOCKER_HUB = "docker.io";

/**
 * The host that serves Docker Hub's registry API (`docker.io` itself redirects to a web page).
 *
 * @example The API host of Docker Hub
 * ```ts
 * import assert from "node:assert/strict";
 * import { DOCKER_HUB_API_HOST, parseReference, registryHost } from "./reference.ts";
 * assert.equal(registryHost(parseReference("alpine")), DOCKER_HUB_API_HOST);
 * ```
 */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";

const DOCKER_HUB_ALIASES: ReadonlySet<string> = new Set([
  "docker.io",
  "index.docker.io",
  "registry-1.docker.io",
]);

/**
 * A whole tag: a word character, then up to 127 word characters, dots and dashes (ASCII only).
 *
 * @example Check a tag
 * ```ts
 * import assert from "node:assert/strict";
 * import { TAG_REGEXP } from "./reference.ts";
 * assert.ok(TAG_REGEXP.test("v1.2-rc_3"));
 * assert.ok(!TAG_REGEXP.test(".hidden"));
 * ```
 */
export const TAG_REGEXP: RegExp = /^[\w][\w.-]{0,127}$/;

/**
 * One whole path component of a repository name: lowercase letters and digits, joined by `.`,
 * `_`, `__` or one or more `-`.
 *
 * @example Check path components
 * ```ts
 * import assert from "node:assert/strict";
 * import { PATH_COMPONENT_REGEXP } from "./reference.ts";
 * assert.ok(PATH_COMPONENT_REGEXP.test("ubuntu-jammy"));
 * assert.ok(!PATH_COMPONENT_REGEXP.test("a___b"));
 * ```
 */
export const PATH_COMPONENT_REGEXP: RegExp =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;

const DOMAIN_COMPONENT_REGEXP =
  /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const NUMERIC_HOST_REGEXP = /^[\d.]+$/;
const IPV4_REGEXP =
  /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_REGEXP = /^\[[0-9a-fA-F:.]+\]$/;
const PORT_REGEXP = /^\d{1,5}$/;
const WHITESPACE_REGEXP = /\s/;
const TAG_CHARACTER_REGEXP = /[^\w.-]/;
const LOOPBACK_IPV4_REGEXP = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
const LOOPBACK_MAPPED_IPV6_REGEXP = /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/;
const URL_DELIMITER_REGEXP = /[@/?#\\\s]/;
const MIRROR_URL_REGEXP = /^(oci|oci\+http):\/\/(.*)$/s;
/** Distribution's limit on the length of a name, registry included. */
const MAX_NAME_LENGTH = 255;
const MAX_TAG_LENGTH = 128;
/** Longest part of an input quoted in an error message. */
const MAX_QUOTED_INPUT = 512;

/**
 * Thrown when a string is not a valid image reference (or tag, or mirror URL). The message
 * quotes the input and says why: `Cannot parse image reference "a/b:x:y": it has more than one tag`.
 *
 * @example Catch a malformed reference
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReference, ReferenceSyntaxError } from "./reference.ts";
 * assert.throws(() => parseReference("a/b:tag:tag"), (error) => {
 *   assert.ok(error instanceof ReferenceSyntaxError);
 *   assert.equal(error.input, "a/b:tag:tag");
 *   assert.equal(error.reason, "it has more than one tag");
 *   return true;
 * });
 * ```
 */
export class ReferenceSyntaxError extends SyntaxError {
  /** The text that failed to parse. */
  readonly input: string;
  /** Why it is not a reference, as in the message. */
  readonly reason: string;

  /**
   * Creates the error.
   *
   * @param input The text.
   * @param reason Why it is not a reference.
   * @param options The cause, when another error explains it (e.g. a `DigestError`).
   */
  constructor(input: string, reason: string, options?: { cause?: unknown }) {
    // A huge input is quoted only in part: the message must stay readable.
    const quoted = input.length > MAX_QUOTED_INPUT
      ? `"${input.slice(0, MAX_QUOTED_INPUT)}…" (${input.length} characters)`
      : `"${input}"`;
    const why = reason.length > 2 * MAX_QUOTED_INPUT
      ? `${reason.slice(0, 2 * MAX_QUOTED_INPUT)}…`
      : reason;
    super(`Cannot parse image reference ${quoted}: ${why}`, options);
    this.name = "ReferenceSyntaxError";
    this.input = input;
    this.reason = reason;
  }
}

function fail(input: string, reason: string, cause?: unknown): never {
  throw new ReferenceSyntaxError(
    input,
    reason,
    cause === undefined ? undefined : { cause },
  );
}

/** Why a tag is not valid, or undefined when it is. */
function tagProblem(tag: string): string | undefined {
  if (tag === "") return "the tag is empty";
  if (tag.length > MAX_TAG_LENGTH) {
    return `the tag is not valid: it has ${tag.length} characters, more than ${MAX_TAG_LENGTH}`;
  }
  const bad = TAG_CHARACTER_REGEXP.exec(tag);
  if (bad !== null) {
    return `the tag "${tag}" is not valid: it contains "${
      bad[0]
    }", use letters, digits, "_", "." and "-"`;
  }
  if (!TAG_REGEXP.test(tag)) {
    return `the tag "${tag}" is not valid: it must start with a letter, digit or "_"`;
  }
  return undefined;
}

/** Why a registry (host and optional port) is not valid, or undefined when it is. */
function registryProblem(registry: string): string | undefined {
  let host = registry;
  let port: string | undefined;
  if (registry.startsWith("[")) {
    const end = registry.indexOf("]");
    if (end < 0) {
      return `the registry "${registry}" is not valid: its IPv6 address has no closing bracket`;
    }
    host = registry.slice(0, end + 1);
    const rest = registry.slice(end + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) {
        return `the registry "${registry}" is not valid: only a :port may follow the IPv6 address`;
      }
      port = rest.slice(1);
    }
    if (!IPV6_REGEXP.test(host) || !URL.canParse(`http://${host}/`)) {
      return `the registry "${registry}" is not valid: "${host}" is not an IPv6 address`;
    }
  } else {
    const colon = registry.indexOf(":");
    if (colon >= 0) {
      host = registry.slice(0, colon);
      port = registry.slice(colon + 1);
    }
    if (host === "") {
      return `the registry "${registry}" is not valid: the host name is empty`;
    }
    if (NUMERIC_HOST_REGEXP.test(host)) {
      if (!IPV4_REGEXP.test(host)) {
        return `the registry "${registry}" is not valid: "${host}" is not an IPv4 address`;
      }
    } else if (
      !host.split(".").every((part) => DOMAIN_COMPONENT_REGEXP.test(part))
    ) {
      return `the registry "${registry}" is not valid: "${host}" is not a host name (letters, digits and inner "-", joined by ".")`;
    }
  }
  if (port !== undefined && (!PORT_REGEXP.test(port) || Number(port) > 65535)) {
    return `the registry "${registry}" is not valid: "${port}" is not a port number`;
  }
  return undefined;
}

/**
 * Docker's rule: a first component is a registry when it has a dot or a port, is `localhost`, or
 * has uppercase letters (which a path component cannot have).
 */
function looksLikeRegistry(component: string): boolean {
  return component.includes(".") || component.includes(":") ||
    component.startsWith("[") || component === "localhost" ||
    component !== component.toLowerCase();
}

/** The host of a registry name, without its port. */
function hostOf(registry: string): string {
  if (registry.startsWith("[")) {
    return registry.slice(0, registry.indexOf("]") + 1);
  }
  const colon = registry.indexOf(":");
  return colon < 0 ? registry : registry.slice(0, colon);
}

function normalizeRegistryName(registry: string): string {
  return DOCKER_HUB_ALIASES.has(registry.toLowerCase()) ? DOCKER_HUB : registry;
}

/**
 * Tells whether a host (with or without port) is this machine: `localhost`, `127.0.0.0/8` or
 * `[::1]` (also written out in full, or IPv4-mapped). Registries there are reached over plain
 * HTTP by default.
 *
 * @param host A host as in a URL's `host`, e.g. `127.0.0.1:5000`, `[::1]:5000`.
 * @returns True for a loopback host.
 *
 * @example Loopback and other hosts
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLoopbackHost } from "./reference.ts";
 * assert.ok(isLoopbackHost("localhost"));
 * assert.ok(isLoopbackHost("127.3.2.1:5000"));
 * assert.ok(isLoopbackHost("[::1]:5000"));
 * assert.ok(!isLoopbackHost("ghcr.io"));
 * assert.ok(!isLoopbackHost("127.0.0.1.example.com"));
 * ```
 */
export function isLoopbackHost(host: string): boolean {
  if (host === "" || URL_DELIMITER_REGEXP.test(host)) return false;
  // A bare IPv6 address ("::1") has more than one colon; the URL parser needs brackets.
  const bracketed = !host.startsWith("[") && host.split(":").length > 2
    ? `[${host}]`
    : host;
  if (!URL.canParse(`http://${bracketed}/`)) return false;
  // The URL parser lowercases, expands IPv4 shorthands and compresses IPv6.
  const { hostname } = new URL(`http://${bracketed}/`);
  return hostname === "localhost" || hostname === "[::1]" ||
    LOOPBACK_IPV4_REGEXP.test(hostname) ||
    LOOPBACK_MAPPED_IPV6_REGEXP.test(hostname);
}

function schemeFor(
  registry: string,
  insecure: boolean | readonly string[] | undefined,
): "https" | "http" {
  if (insecure === true || isLoopbackHost(registry)) return "http";
  if (insecure === undefined || insecure === false) return "https";
  const name = registry.toLowerCase();
  const host = hostOf(name);
  for (const entry of insecure) {
    const wanted = normalizeRegistryName(entry).toLowerCase();
    if (wanted === name || wanted === host) return "http";
  }
  return "https";
}

/** The reason a digest inside a reference is not valid, from the digest parser's message. */
function digestProblem(digest: string, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const prefix = `Cannot parse digest "${digest}": `;
  const why = error instanceof DigestError && message.startsWith(prefix)
    ? message.slice(prefix.length)
    : message;
  return `the digest "${digest}" is not valid: ${why}`;
}

function isDigest(text: string): boolean {
  try {
    parseDigest(text);
    return true;
  } catch {
    return false;
  }
}

/** Parses a reference; errors quote `input`, which is the text or the URL it came from. */
function parseParts(
  text: string,
  input: string,
): Omit<ImageReference, "scheme"> {
  if (text === "") fail(input, "it is empty");
  if (WHITESPACE_REGEXP.test(text)) fail(input, "it contains whitespace");

  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    const digestText = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (digestText === "") fail(input, "the digest after @ is empty");
    if (digestText.includes("@")) fail(input, "it has more than one digest");
    try {
      digest = formatDigest(parseDigest(digestText));
    } catch (error) {
      // "name@sha256:<hex>:tag": the tag was written after the digest.
      const [algorithm, encoded, ...after] = digestText.split(":");
      if (after.length > 0 && isDigest(`${algorithm}:${encoded}`)) {
        fail(
          input,
          `the tag ":${
            after.join(":")
          }" comes after the digest: write name:tag@digest`,
          error,
        );
      }
      fail(input, digestProblem(digestText, error), error);
    }
  }

  let registry: string | undefined;
  let path = rest;
  const slash = rest.indexOf("/");
  const first = slash < 0 ? rest : rest.slice(0, slash);
  if (slash >= 0 && looksLikeRegistry(first)) {
    registry = first;
    path = rest.slice(slash + 1);
    const problem = registryProblem(registry);
    if (problem !== undefined) {
      const onlyUppercase = !first.includes(".") && !first.includes(":") &&
        !first.startsWith("[");
      fail(
        input,
        onlyUppercase
          ? `${problem} (a first component with uppercase letters names a registry, since repository names are lowercase)`
          : problem,
      );
    }
  } else if (slash < 0 && rest.startsWith("[")) {
    fail(input, `the registry "${rest}" must be followed by /repository`);
  }

  let tag: string | undefined;
  const colon = path.lastIndexOf(":");
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (path.includes(":")) fail(input, "it has more than one tag");
    if (tag === "") fail(input, "the tag after : is empty");
    const problem = tagProblem(tag);
    if (problem !== undefined) fail(input, problem);
  }

  if (path === "") fail(input, "the repository name is empty");
  const components = path.split("/");
  for (const component of components) {
    if (component === "") {
      fail(
        input,
        `the repository "${path}" has an empty path component (a leading, trailing or double /)`,
      );
    }
    if (!PATH_COMPONENT_REGEXP.test(component.toLowerCase())) {
      fail(
        input,
        `"${component}" is not a valid path component: use letters and digits separated by ".", "_", "__" or "-"`,
      );
    }
  }
  const display = normalizeRegistryName(registry ?? DOCKER_HUB);
  let repository = path.toLowerCase();
  if (display === DOCKER_HUB && components.length === 1) {
    repository = `library/${repository}`;
  }
  const length = display.length + 1 + repository.length;
  if (length > MAX_NAME_LENGTH) {
    fail(
      input,
      `the name "${display}/${repository}" has ${length} characters, more than ${MAX_NAME_LENGTH}`,
    );
  }
  if (tag === undefined && digest === undefined) tag = "latest";
  return {
    registry: display,
    repository,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

/**
 * Parses an image reference with Docker's defaults.
 *
 * - No registry means Docker Hub (`docker.io`), with `library/` before one-component names.
 * - A first component without `.` or `:`, other than `localhost` and without uppercase letters,
 *   is part of the path (`myorg/app` is on Docker Hub, `MyOrg/app` names the registry `MyOrg`).
 * - `docker.io`, `index.docker.io` and `registry-1.docker.io` all become `docker.io`.
 * - Repository names are lowercased; tags keep their case.
 * - Without tag or digest the tag is `latest`; a digest alone leaves the tag unset.
 * - Loopback registries (`localhost`, `127.0.0.0/8`, `[::1]`, any port) and those marked
 *   insecure are reached over HTTP, the others over HTTPS.
 * - As in spack, a lone `host:port` is a Docker Hub name with a tag (`example.com:1234` is
 *   `docker.io/library/example.com:1234`): write `host:port/repository` for a registry.
 *
 * @param text The reference, e.g. `ghcr.io/org/app:v1@sha256:…`.
 * @param options Which registries to reach over plain HTTP.
 * @returns The reference.
 * @throws {ReferenceSyntaxError} When the text is not a reference; the message says why.
 *
 * @example Docker Hub defaults and an explicit registry
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReference } from "./reference.ts";
 * assert.deepEqual(parseReference("ubuntu:22.04"), {
 *   registry: "docker.io", repository: "library/ubuntu", tag: "22.04", scheme: "https",
 * });
 * assert.equal(parseReference("example.com/UPPER/lower:AbC").repository, "upper/lower");
 * assert.equal(parseReference("localhost:5000/app").scheme, "http");
 * ```
 *
 * @example The error says why
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReference } from "./reference.ts";
 * assert.throws(
 *   () => parseReference("hello#world:latest"),
 *   /Cannot parse image reference "hello#world:latest": "hello#world" is not a valid path component/,
 * );
 * ```
 */
export function parseReference(
  text: string,
  options: ParseReferenceOptions = {},
): ImageReference {
  const parts = parseParts(text, text);
  return { ...parts, scheme: schemeFor(parts.registry, options.insecure) };
}

/**
 * Prints a reference canonically: `registry/repository[:tag][@digest]`, which
 * {@linkcode parseReference} reads back to the same reference.
 *
 * @param ref The reference.
 * @returns The canonical string.
 *
 * @example Canonical names
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatReference, parseReference } from "./reference.ts";
 * assert.equal(formatReference(parseReference("ubuntu")), "docker.io/library/ubuntu:latest");
 * assert.equal(formatReference(parseReference("index.docker.io/org/app:1")), "docker.io/org/app:1");
 * ```
 */
export function formatReference(ref: ImageReference): string {
  let text = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) text += `:${ref.tag}`;
  if (ref.digest !== undefined) text += `@${ref.digest}`;
  return text;
}

function checkTag(ref: ImageReference, tag: string): void {
  const problem = tagProblem(tag);
  if (problem !== undefined) {
    fail(`${ref.registry}/${ref.repository}:${tag}`, problem);
  }
}

/**
 * The same repository (and scheme) with another tag and **no digest**, so that it names
 * whatever the tag points to.
 *
 * @param ref The reference.
 * @param tag The tag.
 * @returns The new reference.
 * @throws {ReferenceSyntaxError} When the tag is not valid.
 *
 * @example Retag, dropping the digest
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatReference, parseReference, withTag } from "./reference.ts";
 * const pinned = parseReference("ghcr.io/a/b:v1@sha256:" + "a".repeat(64));
 * assert.equal(formatReference(withTag(pinned, "v2")), "ghcr.io/a/b:v2");
 * ```
 */
export function withTag(ref: ImageReference, tag: string): ImageReference {
  checkTag(ref, tag);
  return {
    registry: ref.registry,
    repository: ref.repository,
    tag,
    scheme: ref.scheme,
  };
}

/**
 * The same repository, tag and scheme, pinned to a digest (the tag is kept, as in spack; the
 * digest wins when the manifest is fetched).
 *
 * @param ref The reference.
 * @param digest The digest.
 * @returns The new reference.
 * @throws {DigestError} When the digest is not valid.
 *
 * @example Pin a tag to a digest
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatReference, parseReference, withDigest } from "./reference.ts";
 * const digest = "sha256:" + "a".repeat(64);
 * const ref = withDigest(parseReference("ghcr.io/a/b:v1"), digest);
 * assert.equal(formatReference(ref), `ghcr.io/a/b:v1@${digest}`);
 * ```
 */
export function withDigest(
  ref: ImageReference,
  digest: string,
): ImageReference {
  return { ...ref, digest: formatDigest(parseDigest(digest)) };
}

/**
 * The host (and port) that serves the registry API: `registry-1.docker.io` for Docker Hub, the
 * registry itself otherwise.
 *
 * @param ref The reference.
 * @returns `host[:port]`.
 *
 * @example API hosts
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReference, registryHost } from "./reference.ts";
 * assert.equal(registryHost(parseReference("ubuntu")), "registry-1.docker.io");
 * assert.equal(registryHost(parseReference("[::1]:5000/a")), "[::1]:5000");
 * ```
 */
export function registryHost(ref: ImageReference): string {
  return DOCKER_HUB_ALIASES.has(ref.registry.toLowerCase())
    ? DOCKER_HUB_API_HOST
    : ref.registry;
}

/**
 * The registry's base URL, `scheme://host[:port]`.
 *
 * @param ref The reference.
 * @returns The URL without a trailing slash.
 *
 * @example Base URLs
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReference, registryUrl } from "./reference.ts";
 * assert.equal(registryUrl(parseReference("127.0.0.1:5000/a")), "http://127.0.0.1:5000");
 * assert.equal(registryUrl(parseReference("ghcr.io/a")), "https://ghcr.io");
 * ```
 */
export function registryUrl(ref: ImageReference): string {
  return `${ref.scheme}://${registryHost(ref)}`;
}

function repositoryUrl(ref: ImageReference): string {
  return `${registryUrl(ref)}/v2/${ref.repository}`;
}

/**
 * The URL of a manifest, `…/v2/<repository>/manifests/<reference>`: by the given tag or digest,
 * else the reference's digest, else its tag.
 *
 * @param ref The reference.
 * @param reference A tag or digest overriding the reference's own.
 * @returns The URL.
 * @throws {ReferenceSyntaxError} When `reference` is neither a tag nor (with a `:`) a digest.
 * @throws {DigestError} When `reference` has a `:` but is not a valid digest.
 *
 * @example The digest wins over the tag
 * ```ts
 * import assert from "node:assert/strict";
 * import { manifestUrl, parseReference } from "./reference.ts";
 * const digest = "sha256:" + "a".repeat(64);
 * assert.equal(manifestUrl(parseReference("ghcr.io/a/b:v1")), "https://ghcr.io/v2/a/b/manifests/v1");
 * assert.equal(
 *   manifestUrl(parseReference(`ghcr.io/a/b:v1@${digest}`)),
 *   `https://ghcr.io/v2/a/b/manifests/${digest}`,
 * );
 * ```
 */
export function manifestUrl(ref: ImageReference, reference?: string): string {
  let target = ref.digest ?? ref.tag ?? "latest";
  if (reference !== undefined) {
    if (reference.includes(":")) {
      target = formatDigest(parseDigest(reference));
    } else {
      checkTag(ref, reference);
      target = reference;
    }
  }
  return `${repositoryUrl(ref)}/manifests/${target}`;
}

/**
 * The URL of a blob, `…/v2/<repository>/blobs/<digest>`.
 *
 * @param ref The repository (tag and digest are ignored).
 * @param digest The blob's digest.
 * @returns The URL.
 * @throws {DigestError} When the digest is not valid.
 *
 * @example A blob URL
 * ```ts
 * import assert from "node:assert/strict";
 * import { blobUrl, parseReference } from "./reference.ts";
 * const digest = "sha256:" + "a".repeat(64);
 * assert.equal(blobUrl(parseReference("ghcr.io/a/b"), digest), `https://ghcr.io/v2/a/b/blobs/${digest}`);
 * ```
 */
export function blobUrl(ref: ImageReference, digest: string): string {
  return `${repositoryUrl(ref)}/blobs/${formatDigest(parseDigest(digest))}`;
}

/**
 * The URL that starts a blob upload, `…/v2/<repository>/blobs/uploads/`, with `?digest=` for a
 * single-request (monolithic POST) upload.
 *
 * @param ref The repository (tag and digest are ignored).
 * @param digest The blob's digest, for a single POST.
 * @returns The URL.
 * @throws {DigestError} When the digest is given and not valid.
 *
 * @example Upload URLs
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReference, uploadsUrl } from "./reference.ts";
 * const ref = parseReference("ghcr.io/a/b");
 * const digest = "sha256:" + "a".repeat(64);
 * assert.equal(uploadsUrl(ref), "https://ghcr.io/v2/a/b/blobs/uploads/");
 * assert.equal(uploadsUrl(ref, digest), `https://ghcr.io/v2/a/b/blobs/uploads/?digest=${digest}`);
 * ```
 */
export function uploadsUrl(ref: ImageReference, digest?: string): string {
  const url = `${repositoryUrl(ref)}/blobs/uploads/`;
  return digest === undefined
    ? url
    : `${url}?digest=${formatDigest(parseDigest(digest))}`;
}

/**
 * The URL of the tag list, `…/v2/<repository>/tags/list`, with optional pagination.
 *
 * @param ref The repository (tag and digest are ignored).
 * @param options Page size `n` (a positive integer) and the `last` tag of the previous page.
 * @returns The URL.
 * @throws {RangeError} When `n` is not a positive integer.
 *
 * @example A page of tags
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReference, tagsUrl } from "./reference.ts";
 * const ref = parseReference("ghcr.io/a/b");
 * assert.equal(tagsUrl(ref), "https://ghcr.io/v2/a/b/tags/list");
 * assert.equal(tagsUrl(ref, { n: 2, last: "v1" }), "https://ghcr.io/v2/a/b/tags/list?n=2&last=v1");
 * ```
 */
export function tagsUrl(
  ref: ImageReference,
  options: { n?: number; last?: string } = {},
): string {
  const query = new URLSearchParams();
  if (options.n !== undefined) {
    if (!Number.isSafeInteger(options.n) || options.n < 1) {
      throw new RangeError(
        `Cannot list the tags of ${ref.registry}/${ref.repository}: the page size must be a positive integer, got ${options.n}`,
      );
    }
    query.set("n", String(options.n));
  }
  if (options.last !== undefined) query.set("last", options.last);
  const text = query.toString();
  return `${repositoryUrl(ref)}/tags/list${text === "" ? "" : `?${text}`}`;
}

/**
 * Resolves a path or URL the registry sent (a `Location`, a `Link`) against its `/v2/` base, as
 * a URL join: absolute URLs win, `/x` is host-rooted, `x` is relative to `/v2/`.
 *
 * @param ref The reference.
 * @param path The path or URL; empty for the `/v2/` base itself.
 * @returns The absolute URL.
 *
 * @example Relative, host-rooted and absolute locations
 * ```ts
 * import assert from "node:assert/strict";
 * import { endpoint, parseReference } from "./reference.ts";
 * const ref = parseReference("127.0.0.1:5000/a");
 * assert.equal(endpoint(ref), "http://127.0.0.1:5000/v2/");
 * assert.equal(endpoint(ref, "a/blobs/uploads/1"), "http://127.0.0.1:5000/v2/a/blobs/uploads/1");
 * assert.equal(endpoint(ref, "/v2/a/blobs/uploads/1"), "http://127.0.0.1:5000/v2/a/blobs/uploads/1");
 * assert.equal(endpoint(ref, "https://cdn.example/x"), "https://cdn.example/x");
 * ```
 */
export function endpoint(ref: ImageReference, path = ""): string {
  return new URL(path, `${registryUrl(ref)}/v2/`).href;
}

/**
 * Parses a spack-style mirror URL: `oci://host/name[:tag]` is reached over HTTPS (even on a
 * loopback host, as in spack) and `oci+http://host/name[:tag]` over plain HTTP. The part after
 * the scheme is an image reference with the defaults of {@linkcode parseReference}.
 *
 * @param url The mirror URL.
 * @returns The reference, with the scheme the URL asks for.
 * @throws {ReferenceSyntaxError} When it is not an `oci://` or `oci+http://` URL of a valid
 * reference; the message quotes the whole URL.
 *
 * @example Both schemes
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatReference, parseMirrorUrl } from "./reference.ts";
 * const mirror = parseMirrorUrl("oci://ghcr.io/org/cache");
 * assert.equal(mirror.scheme, "https");
 * assert.equal(formatReference(mirror), "ghcr.io/org/cache:latest");
 * assert.equal(parseMirrorUrl("oci+http://example.com:5000/cache").scheme, "http");
 * ```
 */
export function parseMirrorUrl(url: string): ImageReference {
  const match = MIRROR_URL_REGEXP.exec(url);
  if (match === null) {
    fail(url, 'a mirror URL must start with "oci://" or "oci+http://"');
  }
  if (match[2] === "") fail(url, "no reference follows the scheme");
  const parts = parseParts(match[2], url);
  return { ...parts, scheme: match[1] === "oci" ? "https" : "http" };
}

/**
 * Makes a valid tag out of any text, as spack's `ensure_valid_tag` does for generated tags:
 * characters outside `[A-Za-z0-9_.-]` become `_`, a leading `.` or `-` becomes `_` (spack keeps
 * it, and registries refuse the tag), empty text becomes `_`, and text longer than 128
 * characters keeps its first and last 64 (so a hash and suffix at the end survive).
 *
 * @param text Any text.
 * @returns A tag that matches {@linkcode TAG_REGEXP}.
 *
 * @example Tags for spack specs
 * ```ts
 * import assert from "node:assert/strict";
 * import { sanitizeTag } from "./reference.ts";
 * assert.equal(sanitizeTag("python@3.11+ssl"), "python_3.11_ssl");
 * assert.equal(sanitizeTag("mpich-git.abc=develop.spack"), "mpich-git.abc_develop.spack");
 * assert.equal(sanitizeTag(".hidden"), "_hidden");
 * ```
 */
export function sanitizeTag(text: string): string {
  let tag = text.replace(/[^\w.-]/g, "_");
  if (tag === "") return "_";
  if (!/^\w/.test(tag)) tag = `_${tag.slice(1)}`;
  if (tag.length > MAX_TAG_LENGTH) {
    tag = tag.slice(0, MAX_TAG_LENGTH / 2) + tag.slice(-MAX_TAG_LENGTH / 2);
  }
  return tag;
}
