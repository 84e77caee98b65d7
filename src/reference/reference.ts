/**
 * Image references (`[registry/]repository[:tag][@digest]`), registry URLs, and spack-style
 * `oci://` mirror URLs.
 *
 * @module
 */
import { DigestError, formatDigest, parseDigest } from "./digest.ts";

/** A parsed image reference. */
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

/** Options of {@linkcode parseReference}. */
export interface ParseReferenceOptions {
  /**
   * Registries reached over plain HTTP besides loopback ones: `true` for all, or a list of
   * registry names, with or without port.
   * @default {false}
   */
  readonly insecure?: boolean | readonly string[];
}

/** The display name of Docker Hub. */
export const DOCKER_HUB = "docker.io";
/** The host that serves Docker Hub's registry API. */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";
const DOCKER_HUB_ALIASES = new Set([
  "docker.io",
  "index.docker.io",
  "registry-1.docker.io",
]);

/** A tag: a word character, then up to 127 word characters, dots and dashes. */
export const TAG_REGEXP: RegExp = /^[\w][\w.-]{0,127}$/;
/** One path component of a repository name, with its separators. */
export const PATH_COMPONENT_REGEXP: RegExp =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT_REGEXP =
  /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV4_REGEXP =
  /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_REGEXP = /^\[[0-9a-fA-F:.]+\]$/;
const PORT_REGEXP = /^[0-9]+$/;
/** Distribution's limit on the length of a name (registry included). */
const MAX_NAME_LENGTH = 255;

/**
 * Thrown when a string is not a valid image reference.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReference, ReferenceSyntaxError } from "./reference.ts";
 * assert.throws(() => parseReference("a/b:tag:tag"), ReferenceSyntaxError);
 * ```
 */
export class ReferenceSyntaxError extends SyntaxError {
  /** The text that failed to parse. */
  readonly input: string;

  /**
   * Creates the error.
   *
   * @param input The text.
   * @param reason Why it is not a reference.
   * @param options The cause, when another error explains it.
   */
  constructor(input: string, reason: string, options?: { cause?: unknown }) {
    super(`Cannot parse image reference "${input}": ${reason}`, options);
    this.name = "ReferenceSyntaxError";
    this.input = input;
  }
}

/** Why a host is not valid, or undefined when it is. */
function hostProblem(host: string): string | undefined {
  let name = host;
  let port: string | undefined;
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    if (end < 0) return "an IPv6 address is missing its closing bracket";
    name = host.slice(0, end + 1);
    const rest = host.slice(end + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) {
        return "unexpected text after the IPv6 address";
      }
      port = rest.slice(1);
    }
    if (!IPV6_REGEXP.test(name)) return `"${name}" is not an IPv6 address`;
  } else {
    const colon = host.lastIndexOf(":");
    if (colon >= 0) {
      name = host.slice(0, colon);
      port = host.slice(colon + 1);
    }
    if (/^[\d.]+$/.test(name)) {
      if (!IPV4_REGEXP.test(name)) return `"${name}" is not an IPv4 address`;
    } else if (!name.split(".").every((c) => DOMAIN_COMPONENT_REGEXP.test(c))) {
      return `"${name}" is not a valid registry host name`;
    }
  }
  if (port !== undefined && (!PORT_REGEXP.test(port) || Number(port) > 65535)) {
    return `"${port}" is not a valid port`;
  }
  return undefined;
}

/** A first path component is a registry when it has a dot or port, or is localhost, or has uppercase. */
function looksLikeRegistry(component: string): boolean {
  return component.includes(".") || component.includes(":") ||
    component.startsWith("[") || component === "localhost" ||
    component !== component.toLowerCase();
}

/**
 * Tells whether a host (with or without port) is this machine: `localhost`, `127.0.0.0/8` or
 * `[::1]`. Registries there are reached over plain HTTP by default.
 *
 * @param host A host, e.g. `127.0.0.1:5000`.
 * @returns True for a loopback host.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLoopbackHost } from "./reference.ts";
 * assert.ok(isLoopbackHost("127.3.2.1:5000"));
 * assert.ok(isLoopbackHost("[::1]:5000"));
 * assert.ok(!isLoopbackHost("ghcr.io"));
 * ```
 */
export function isLoopbackHost(host: string): boolean {
  let name = host.toLowerCase();
  if (name.startsWith("[")) name = name.slice(0, name.indexOf("]") + 1);
  else if (name.includes(":")) name = name.slice(0, name.lastIndexOf(":"));
  return name === "localhost" || name === "[::1]" ||
    (IPV4_REGEXP.test(name) && name.startsWith("127."));
}

function normalizeRegistryName(registry: string): string {
  return DOCKER_HUB_ALIASES.has(registry.toLowerCase()) ? DOCKER_HUB : registry;
}

function schemeFor(
  registry: string,
  insecure: boolean | readonly string[] | undefined,
): "https" | "http" {
  if (isLoopbackHost(registry) || insecure === true) return "http";
  if (Array.isArray(insecure)) {
    const host = registry.startsWith("[")
      ? registry.slice(0, registry.indexOf("]") + 1)
      : registry.split(":")[0];
    if (insecure.includes(registry) || insecure.includes(host)) return "http";
  }
  return "https";
}

/**
 * Parses an image reference with Docker's defaults: no registry means Docker Hub (`docker.io`,
 * with `library/` before one-component names); a first component without `.` or `:`, other
 * than `localhost`, is part of the path. Repository names are lowercased, tags are not. Without
 * tag or digest the tag is `latest`. Loopback registries use HTTP, others HTTPS unless marked
 * insecure.
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
 * assert.equal(parseReference("localhost:5000/app").scheme, "http");
 * ```
 */
export function parseReference(
  text: string,
  options: ParseReferenceOptions = {},
): ImageReference {
  const fail = (reason: string, cause?: unknown): never => {
    throw new ReferenceSyntaxError(text, reason, { cause });
  };
  if (text === "") fail("it is empty");
  if (/\s/.test(text)) fail("it contains whitespace");

  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    const digestText = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (digestText === "") fail("the digest after @ is empty");
    try {
      digest = formatDigest(parseDigest(digestText));
    } catch (error) {
      const reason = error instanceof DigestError
        ? error.message.replace(/^Cannot parse digest /, "digest ")
        : String(error);
      const afterTag = digestText.split(":").length > 2 ||
        digestText.includes("@");
      fail(
        afterTag ? `the digest must come after the tag: ${reason}` : reason,
        error,
      );
    }
  }

  const slash = rest.indexOf("/");
  let registry: string | undefined;
  let path = rest;
  if (slash >= 0 && looksLikeRegistry(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    path = rest.slice(slash + 1);
    const problem = hostProblem(registry);
    if (problem !== undefined) fail(problem);
  }

  let tag: string | undefined;
  const colon = path.lastIndexOf(":");
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (tag === "") fail("the tag after : is empty");
    if (path.includes(":")) fail("it has more than one tag");
    if (tag.includes("/")) fail(`"${tag}" is not a valid tag: it contains /`);
    if (!TAG_REGEXP.test(tag)) {
      fail(
        `"${tag}" is not a valid tag: it must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`,
      );
    }
  }

  if (path === "") fail("the repository name is empty");
  const components = path.toLowerCase().split("/");
  for (const component of components) {
    if (component === "") fail("the repository has an empty path component");
    if (!PATH_COMPONENT_REGEXP.test(component)) {
      fail(
        `"${component}" is not a valid path component: use lowercase letters and digits separated by ".", "_", "__" or "-"`,
      );
    }
  }
  let repository = components.join("/");
  const display = normalizeRegistryName(registry ?? DOCKER_HUB);
  if (display === DOCKER_HUB && !repository.includes("/")) {
    repository = `library/${repository}`;
  }
  if (display.length + 1 + repository.length > MAX_NAME_LENGTH) {
    fail(`the name is longer than ${MAX_NAME_LENGTH} characters`);
  }
  if (tag === undefined && digest === undefined) tag = "latest";
  return {
    registry: display,
    repository,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
    scheme: schemeFor(display, options.insecure),
  };
}

/**
 * Prints a reference canonically: `registry/repository[:tag][@digest]`.
 *
 * @param ref The reference.
 * @returns The canonical string.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatReference, parseReference } from "./reference.ts";
 * assert.equal(formatReference(parseReference("ubuntu")), "docker.io/library/ubuntu:latest");
 * ```
 */
export function formatReference(ref: ImageReference): string {
  let text = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) text += `:${ref.tag}`;
  if (ref.digest !== undefined) text += `@${ref.digest}`;
  return text;
}

/**
 * The same repository with another tag, and no digest.
 *
 * @param ref The reference.
 * @param tag The tag.
 * @returns The new reference.
 * @throws {ReferenceSyntaxError} When the tag is not valid.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatReference, parseReference, withTag } from "./reference.ts";
 * assert.equal(formatReference(withTag(parseReference("ghcr.io/a/b:v1"), "v2")), "ghcr.io/a/b:v2");
 * ```
 */
export function withTag(ref: ImageReference, tag: string): ImageReference {
  if (!TAG_REGEXP.test(tag)) {
    throw new ReferenceSyntaxError(
      `${ref.registry}/${ref.repository}:${tag}`,
      `"${tag}" is not a valid tag`,
    );
  }
  return {
    registry: ref.registry,
    repository: ref.repository,
    tag,
    scheme: ref.scheme,
  };
}

/**
 * The same repository and tag, pinned to a digest.
 *
 * @param ref The reference.
 * @param digest The digest.
 * @returns The new reference.
 * @throws {DigestError} When the digest is not valid.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReference, withDigest } from "./reference.ts";
 * const digest = "sha256:" + "a".repeat(64);
 * assert.equal(withDigest(parseReference("ghcr.io/a/b:v1"), digest).digest, digest);
 * ```
 */
export function withDigest(
  ref: ImageReference,
  digest: string,
): ImageReference {
  const canonical = formatDigest(parseDigest(digest));
  return { ...ref, digest: canonical };
}

/**
 * The host (and port) that serves the registry API: `registry-1.docker.io` for Docker Hub.
 *
 * @param ref The reference.
 * @returns `host[:port]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReference, registryHost } from "./reference.ts";
 * assert.equal(registryHost(parseReference("ubuntu")), "registry-1.docker.io");
 * ```
 */
export function registryHost(ref: ImageReference): string {
  return ref.registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : ref.registry;
}

/**
 * The registry's base URL, `scheme://host[:port]`.
 *
 * @param ref The reference.
 * @returns The URL without a trailing slash.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReference, registryUrl } from "./reference.ts";
 * assert.equal(registryUrl(parseReference("127.0.0.1:5000/a")), "http://127.0.0.1:5000");
 * ```
 */
export function registryUrl(ref: ImageReference): string {
  return `${ref.scheme}://${registryHost(ref)}`;
}

function repositoryUrl(ref: ImageReference): string {
  return `${registryUrl(ref)}/v2/${ref.repository}`;
}

/**
 * The URL of a manifest: by the given tag or digest, else the reference's digest, else its tag.
 *
 * @param ref The reference.
 * @param reference A tag or digest overriding the reference's own.
 * @returns The URL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { manifestUrl, parseReference } from "./reference.ts";
 * assert.equal(manifestUrl(parseReference("ghcr.io/a/b:v1")), "https://ghcr.io/v2/a/b/manifests/v1");
 * ```
 */
export function manifestUrl(ref: ImageReference, reference?: string): string {
  return `${repositoryUrl(ref)}/manifests/${
    reference ?? ref.digest ?? ref.tag ?? "latest"
  }`;
}

/**
 * The URL of a blob.
 *
 * @param ref The repository.
 * @param digest The blob's digest.
 * @returns The URL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { blobUrl, parseReference } from "./reference.ts";
 * assert.equal(blobUrl(parseReference("ghcr.io/a/b"), "sha256:x"), "https://ghcr.io/v2/a/b/blobs/sha256:x");
 * ```
 */
export function blobUrl(ref: ImageReference, digest: string): string {
  return `${repositoryUrl(ref)}/blobs/${digest}`;
}

/**
 * The URL that starts a blob upload, with `?digest=` for a single-request upload.
 *
 * @param ref The repository.
 * @param digest The blob's digest, for a single POST.
 * @returns The URL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReference, uploadsUrl } from "./reference.ts";
 * assert.equal(uploadsUrl(parseReference("ghcr.io/a/b")), "https://ghcr.io/v2/a/b/blobs/uploads/");
 * ```
 */
export function uploadsUrl(ref: ImageReference, digest?: string): string {
  const url = `${repositoryUrl(ref)}/blobs/uploads/`;
  return digest === undefined ? url : `${url}?digest=${digest}`;
}

/**
 * The URL of the tag list, with optional pagination.
 *
 * @param ref The repository.
 * @param options Page size `n` and the `last` tag seen.
 * @returns The URL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReference, tagsUrl } from "./reference.ts";
 * assert.equal(tagsUrl(parseReference("ghcr.io/a/b"), { n: 2, last: "v1" }), "https://ghcr.io/v2/a/b/tags/list?n=2&last=v1");
 * ```
 */
export function tagsUrl(
  ref: ImageReference,
  options: { n?: number; last?: string } = {},
): string {
  const query = new URLSearchParams();
  if (options.n !== undefined) query.set("n", String(options.n));
  if (options.last !== undefined) query.set("last", options.last);
  const text = query.toString();
  return `${repositoryUrl(ref)}/tags/list${text ? `?${text}` : ""}`;
}

/**
 * Resolves a path or URL the registry sent (a `Location`, a `Link`) against its `/v2/` base:
 * absolute URLs win, `/x` is host-rooted, `x` is relative to `/v2/`.
 *
 * @param ref The reference.
 * @param path The path or URL.
 * @returns The absolute URL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { endpoint, parseReference } from "./reference.ts";
 * const ref = parseReference("127.0.0.1:5000/a");
 * assert.equal(endpoint(ref, "/v2/a/blobs/uploads/1"), "http://127.0.0.1:5000/v2/a/blobs/uploads/1");
 * assert.equal(endpoint(ref, "https://cdn.example/x"), "https://cdn.example/x");
 * ```
 */
export function endpoint(ref: ImageReference, path = ""): string {
  return new URL(path, `${registryUrl(ref)}/v2/`).href;
}

/**
 * Parses a spack-style mirror URL: `oci://host/name[:tag]` (HTTPS) or `oci+http://host/name`
 * (plain HTTP).
 *
 * @param url The mirror URL.
 * @returns The reference, with the scheme the URL asks for.
 * @throws {ReferenceSyntaxError} When it is not an `oci://` or `oci+http://` URL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseMirrorUrl } from "./reference.ts";
 * assert.equal(parseMirrorUrl("oci+http://example.com/cache").scheme, "http");
 * assert.equal(parseMirrorUrl("oci://ghcr.io/org/cache").scheme, "https");
 * ```
 */
export function parseMirrorUrl(url: string): ImageReference {
  const match = /^(oci|oci\+http):\/\/(.*)$/.exec(url);
  if (match === null) {
    throw new ReferenceSyntaxError(
      url,
      'a mirror URL must start with "oci://" or "oci+http://"',
    );
  }
  const ref = parseReference(match[2]);
  return { ...ref, scheme: match[1] === "oci" ? "https" : "http" };
}

/**
 * Makes a valid tag out of any text, as spack does for generated tags: characters outside
 * `[\w.-]` become `_`, a leading `.` or `-` becomes `_`, and text longer than 128 characters
 * keeps its first and last 64.
 *
 * @param text Any text.
 * @returns A valid tag.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sanitizeTag } from "./reference.ts";
 * assert.equal(sanitizeTag("python@3.11+ssl"), "python_3.11_ssl");
 * ```
 */
export function sanitizeTag(text: string): string {
  let tag = text.replace(/[^\w.-]/g, "_");
  if (tag === "") tag = "_";
  if (!/^\w/.test(tag)) tag = `_${tag.slice(1)}`;
  if (tag.length > 128) tag = tag.slice(0, 64) + tag.slice(-64);
  return tag;
}
