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
 * else from the document, and a document `mediaType` that, when present, is the same;
 * `schemaVersion` 2; a manifest's `config` and `layers`, or an index's `manifests`, and any
 * `subject`, well-formed descriptors.
 *
 * It does not check that what the descriptors point to exists, nor the manifest's digest.
 *
 * @param bytes The manifest's exact bytes.
 * @param contentType The Content-Type it came with, if any.
 * @param options The size limit.
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
 */
export function parseManifest(
  bytes: Uint8Array,
  contentType?: string | null,
  options: ParseManifestOptions = {},
): ParsedManifest {
  const maxSize = options.maxSize ?? 4 * 1024 * 1024;
  if (bytes.byteLength > maxSize) {
    throw new ManifestError(`the manifest is larger than ${maxSize} bytes`);
  }
  let document: Manifest;
  try {
    document = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new ManifestError("the manifest is not valid JSON", { cause: error });
  }
  if (
    typeof document !== "object" || document === null || Array.isArray(document)
  ) {
    throw new ManifestError("the manifest is not a JSON object");
  }
  const header = contentType?.split(";")[0].trim() || undefined;
  const mediaType = header ?? document.mediaType;
  if (!isManifestMediaType(mediaType) && !isIndexMediaType(mediaType)) {
    throw new ManifestError(
      `unknown manifest content type "${header ?? ""}"${
        document.mediaType ? ` (mediaType "${document.mediaType}")` : ""
      }`,
    );
  }
  if (document.mediaType !== undefined && document.mediaType !== mediaType) {
    throw new ManifestError(
      `the content type "${mediaType}" contradicts the document's mediaType "${document.mediaType}"`,
    );
  }
  if (document.schemaVersion !== 2) {
    throw new ManifestError(
      `schemaVersion is ${shown(document.schemaVersion)}, not 2`,
    );
  }
  const isIndex = isIndexMediaType(mediaType);
  const fields = document as unknown as Record<string, unknown>;
  const descriptors: [unknown, string][] = [];
  if (isIndex) {
    if (!Array.isArray(fields.manifests)) {
      throw new ManifestError("the index has no manifests array");
    }
    fields.manifests.forEach((d, i) =>
      descriptors.push([d, `manifests[${i}]`])
    );
  } else {
    const config = fields.config as { digest?: unknown } | undefined;
    if (typeof config?.digest !== "string" || !Array.isArray(fields.layers)) {
      throw new ManifestError(
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
      throw new ManifestError(
        `the ${isIndex ? "index" : "manifest"} is malformed: ${problem}`,
      );
    }
  }
  return { mediaType: mediaType!, isIndex, manifest: document };
}
