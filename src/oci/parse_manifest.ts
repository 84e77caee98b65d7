/**
 * The one check of a manifest or index's bytes: {@linkcode parseManifest} refuses what is too
 * large, not JSON, of an unknown or contradicted media type, not schema version 2, or whose
 * descriptors are malformed, with a {@linkcode ManifestError} saying which field is wrong.
 * Fields the specs do not define are allowed and kept.
 *
 * @module
 */
import { parseDigest } from "./digest.ts";
import { isIndexMediaType, isManifestMediaType } from "./media_types.ts";
import type { ImageIndex, ImageManifest } from "./manifest.ts";
import type { Platform } from "./platform.ts";

/** Largest manifest accepted, as the distribution spec suggests registries enforce. */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

/** A manifest or an index. */
export type Manifest = ImageManifest | ImageIndex;

/** What {@linkcode parseManifest} found. */
export interface ParsedManifest {
  /** The media type: the Content-Type when given (without parameters), else the document's. */
  readonly mediaType: string;
  /** Whether it is an index (OCI image index or Docker manifest list). */
  readonly isIndex: boolean;
  /** The document, as parsed, unknown fields included. */
  readonly manifest: Manifest;
}

/** Options of {@linkcode parseManifest}. */
export interface ParseManifestOptions {
  /**
   * Largest manifest accepted, in bytes (the distribution spec's recommended limit).
   * @default {4194304}
   */
  readonly maxSize?: number;
  /**
   * Read what registries and layouts really serve, as the client does: a `contentType` that is
   * not a manifest or index type (`application/json`, `text/plain`, none) gives way to the
   * document's `mediaType`, and a document `mediaType` of the same kind as the `contentType`
   * (a Docker manifest under an OCI manifest type, a manifest list under an index type) is
   * accepted. The server, which is sent manifests, is strict.
   * @default {false}
   */
  readonly lenient?: boolean;
  /**
   * Where the bytes come from, put before the reason in the message
   * (`GET https://r.example/v2/app/manifests/v1: 200`, `Cannot read manifest /layout/blobs/…`).
   */
  readonly context?: string;
}

/**
 * Bytes that are not a usable manifest or index. The message says why, naming the field at
 * fault (`layers[1].size is -1, not a non-negative integer`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ManifestError, parseManifest } from "./parse_manifest.ts";
 * assert.throws(() => parseManifest(new TextEncoder().encode("[1, 2]")), ManifestError);
 * ```
 */
export class ManifestError extends SyntaxError {
  /**
   * Makes the error.
   *
   * @param message Why the manifest is refused.
   * @param options The cause (a JSON parse error).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ManifestError";
  }
}

/**
 * An index nested deeper than the depth a resolver or a copy follows: each level is a
 * well-formed index, but there is no end in sight. Thrown the same way whether the indexes come
 * from a registry or from a layout.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { IndexDepthError, ManifestError } from "./parse_manifest.ts";
 * const error = new IndexDepthError("r.example/app:v1", 3);
 * assert.ok(error instanceof ManifestError);
 * assert.match(error.message, /maximum depth 3 of nested indexes reached while resolving r\.example\/app:v1/);
 * ```
 */
export class IndexDepthError extends ManifestError {
  /** The depth that was reached. */
  readonly maxDepth: number;

  /**
   * Makes the error.
   *
   * @param image The image being resolved or copied, for the message.
   * @param maxDepth The depth that was reached.
   */
  constructor(image: string, maxDepth: number) {
    super(
      `maximum depth ${maxDepth} of nested indexes reached while resolving ${image}`,
    );
    this.name = "IndexDepthError";
    this.maxDepth = maxDepth;
  }
}

/** The OCI digest grammar: `algorithm:encoded` (image-spec descriptor.md). */
const DIGEST_GRAMMAR_REGEXP = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** A value for an error message: JSON, cut short. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

/** Why a platform object is not one, or undefined when it is. */
function platformProblem(value: unknown, where: string): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return `${where} is ${shown(value)}, not an object`;
  }
  const platform = value as Record<string, unknown>;
  for (const field of ["os", "architecture"]) {
    if (typeof platform[field] !== "string") {
      return `${where}.${field} is ${shown(platform[field])}, not a string`;
    }
  }
  for (const field of ["variant", "os.version"]) {
    if (platform[field] !== undefined && typeof platform[field] !== "string") {
      return `${where}.${field} is ${shown(platform[field])}, not a string`;
    }
  }
  const features = platform["os.features"];
  if (
    features !== undefined &&
    (!Array.isArray(features) || features.some((f) => typeof f !== "string"))
  ) {
    return `${where}["os.features"] is ${
      shown(features)
    }, not an array of strings`;
  }
  return undefined;
}

/**
 * Tells whether a value is a well-formed platform object: `os` and `architecture` strings,
 * `variant` and `os.version` strings when present, `os.features` an array of strings.
 *
 * @param value Anything, e.g. an index entry's `platform`.
 * @returns True when it is a usable platform.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPlatform } from "./parse_manifest.ts";
 * assert.ok(isPlatform({ os: "linux", architecture: "arm64", variant: "v8" }));
 * assert.ok(!isPlatform("linux/arm64"));
 * ```
 */
export function isPlatform(value: unknown): value is Platform {
  return platformProblem(value, "platform") === undefined;
}

/**
 * Why a value is not a descriptor (image-spec descriptor.md), or undefined when it is: a
 * media type, a digest of the grammar (sha256 and sha512 ones checked in full), a size that is
 * a non-negative integer, and a well-formed platform if any.
 */
function descriptorProblem(value: unknown, where: string): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return `${where} is ${shown(value)}, not a descriptor object`;
  }
  const descriptor = value as Record<string, unknown>;
  if (typeof descriptor.mediaType !== "string" || descriptor.mediaType === "") {
    return `${where}.mediaType is ${
      shown(descriptor.mediaType)
    }, not a media type`;
  }
  const digest = descriptor.digest;
  if (typeof digest !== "string" || !DIGEST_GRAMMAR_REGEXP.test(digest)) {
    return `${where}.digest is ${shown(digest)}, not a digest`;
  }
  if (digest.startsWith("sha256:") || digest.startsWith("sha512:")) {
    try {
      parseDigest(digest);
    } catch (error) {
      return `${where}.digest is not valid: ${(error as Error).message}`;
    }
  }
  const size = descriptor.size;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    return `${where}.size is ${shown(size)}, not a non-negative integer`;
  }
  if (descriptor.platform !== undefined) {
    return platformProblem(descriptor.platform, `${where}.platform`);
  }
  return undefined;
}

/**
 * Parses and checks a manifest or index: at most `maxSize` bytes; a JSON object; a known
 * manifest or index media type, taken from `contentType` when given (its parameters dropped),
 * else from the document, and a document `mediaType` that, when present, is the same (or, with
 * `lenient`, of the same kind); `schemaVersion` 2; a manifest's `config` and `layers`, or an
 * index's `manifests`, and any `subject`, well-formed descriptors.
 *
 * It does not check that what the descriptors point to exists, nor the manifest's digest.
 * Every store reading a manifest and the server receiving one use it.
 *
 * @param bytes The manifest's exact bytes.
 * @param contentType The Content-Type it came with (or a layout's descriptor media type), if any.
 * @param options The size limit, leniency and a context for the message.
 * @returns The media type and the document.
 * @throws {ManifestError} Saying what is wrong.
 *
 * @example An image manifest, and one with a bad layer
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseManifest } from "./parse_manifest.ts";
 * const descriptor = {
 *   mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
 *   digest: "sha256:" + "a".repeat(64),
 *   size: 5,
 * };
 * const manifest = {
 *   schemaVersion: 2,
 *   config: { ...descriptor, mediaType: "application/vnd.oci.image.config.v1+json" },
 *   layers: [descriptor],
 * };
 * const bytes = new TextEncoder().encode(JSON.stringify(manifest));
 * const parsed = parseManifest(bytes, "application/vnd.oci.image.manifest.v1+json");
 * assert.equal(parsed.isIndex, false);
 * assert.equal(parsed.mediaType, "application/vnd.oci.image.manifest.v1+json");
 *
 * const bad = { ...manifest, layers: [{ ...descriptor, size: -1 }] };
 * assert.throws(
 *   () => parseManifest(new TextEncoder().encode(JSON.stringify(bad)), "application/vnd.oci.image.manifest.v1+json"),
 *   /layers\[0\]\.size is -1, not a non-negative integer/,
 * );
 * ```
 *
 * @example What a registry serves as `text/plain`: refused, or read by its own mediaType
 * ```ts
 * import assert from "node:assert/strict";
 * import { ManifestError, parseManifest } from "./parse_manifest.ts";
 * const bytes = new TextEncoder().encode(JSON.stringify({
 *   schemaVersion: 2,
 *   mediaType: "application/vnd.oci.image.index.v1+json",
 *   manifests: [],
 * }));
 * assert.throws(() => parseManifest(bytes, "text/plain"), ManifestError);
 * const parsed = parseManifest(bytes, "text/plain", { lenient: true, context: "GET http://r/v2/a/manifests/v1: 200" });
 * assert.equal(parsed.isIndex, true);
 * ```
 */
export function parseManifest(
  bytes: Uint8Array,
  contentType?: string | null,
  options: ParseManifestOptions = {},
): ParsedManifest {
  const refuse = (reason: string, cause?: unknown) =>
    new ManifestError(
      options.context ? `${options.context}: ${reason}` : reason,
      cause === undefined ? undefined : { cause },
    );
  const maxSize = options.maxSize ?? MAX_MANIFEST_SIZE;
  if (bytes.byteLength > maxSize) {
    throw refuse(`the manifest is larger than ${maxSize} bytes`);
  }
  let document: Manifest;
  try {
    document = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw refuse("the manifest is not valid JSON", error);
  }
  if (
    typeof document !== "object" || document === null || Array.isArray(document)
  ) {
    throw refuse("the manifest is not a JSON object");
  }
  const header = contentType?.split(";")[0].trim() || undefined;
  const known = (type: string | undefined) =>
    isManifestMediaType(type) || isIndexMediaType(type);
  const mediaType = options.lenient && !known(header)
    ? document.mediaType
    : header ?? document.mediaType;
  if (!known(mediaType)) {
    throw refuse(
      `unknown manifest content type "${header ?? ""}"${
        document.mediaType ? ` (mediaType "${document.mediaType}")` : ""
      }`,
    );
  }
  const sameKind = options.lenient && (
    (isManifestMediaType(document.mediaType) &&
      isManifestMediaType(mediaType)) ||
    (isIndexMediaType(document.mediaType) && isIndexMediaType(mediaType))
  );
  if (
    document.mediaType !== undefined && document.mediaType !== mediaType &&
    !sameKind
  ) {
    throw refuse(
      `the content type "${mediaType}" contradicts the document's mediaType "${document.mediaType}"`,
    );
  }
  if (document.schemaVersion !== 2) {
    throw refuse(
      `schemaVersion is ${shown(document.schemaVersion)}, not 2`,
    );
  }
  const isIndex = isIndexMediaType(mediaType);
  const fields = document as unknown as Record<string, unknown>;
  const descriptors: [unknown, string][] = [];
  if (isIndex) {
    if (!Array.isArray(fields.manifests)) {
      throw refuse("the index has no manifests array");
    }
    fields.manifests.forEach((d, i) =>
      descriptors.push([d, `manifests[${i}]`])
    );
  } else {
    const config = fields.config as { digest?: unknown } | undefined;
    if (typeof config?.digest !== "string" || !Array.isArray(fields.layers)) {
      throw refuse(
        "the manifest has no config descriptor or no layers array",
      );
    }
    descriptors.push([config, "config"]);
    fields.layers.forEach((d, i) => descriptors.push([d, `layers[${i}]`]));
  }
  if (fields.subject !== undefined) {
    descriptors.push([fields.subject, "subject"]);
  }
  for (const [descriptor, where] of descriptors) {
    const problem = descriptorProblem(descriptor, where);
    if (problem !== undefined) {
      throw refuse(
        `the ${isIndex ? "index" : "manifest"} is malformed: ${problem}`,
      );
    }
  }
  return { mediaType: mediaType!, isIndex, manifest: document };
}
