/**
 * Artifacts as the image spec 1.1 guidance (and oras) makes them: each file one layer with its
 * media type and an `org.opencontainers.image.title` annotation, the empty config
 * (`application/vnd.oci.empty.v1+json`, `{}`), `artifactType` set, and a `subject` for a
 * referrer.
 *
 * @module
 */
import { basename } from "node:path";
import { digestOf, digestOfFile } from "../oci/digest.ts";
import type { Descriptor, ImageManifest } from "../oci/manifest.ts";
import {
  OCI_EMPTY_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "../oci/media_types.ts";
import { encodeManifest } from "../store/remote/manifests.ts";
import type { CallOptions, Store } from "../store/store.ts";
import {
  type BlobSource,
  bytesSource,
  fileSource,
} from "../transport/request_body.ts";

/** The annotation that names a layer's file. */
export const TITLE_ANNOTATION = "org.opencontainers.image.title";

/** The media type of a file given without one. */
export const DEFAULT_FILE_MEDIA_TYPE = "application/octet-stream";

/** The empty JSON blob, `{}`. */
const EMPTY_BYTES = new TextEncoder().encode("{}");

/**
 * The media type of a config file given without one: the artifact guidance's "unknown" config
 * type, as oras labels it (the empty type means the two bytes `{}`).
 */
const UNKNOWN_CONFIG_MEDIA_TYPE = "application/vnd.unknown.config.v1+json";

/** The descriptor of the empty config `{}` (`application/vnd.oci.empty.v1+json`). */
export const EMPTY_DESCRIPTOR: Descriptor = {
  mediaType: OCI_EMPTY_MEDIA_TYPE,
  digest: digestOf(EMPTY_BYTES),
  size: EMPTY_BYTES.byteLength,
};

/** One file of an artifact. */
export interface ArtifactFile {
  /** Where the bytes are. */
  readonly path: string;
  /** Its media type. @default {"application/octet-stream"} */
  readonly mediaType?: string;
  /** The title it is stored under. @default {the path's last component} */
  readonly title?: string;
}

/**
 * Reads `PATH[:MEDIATYPE]` as oras does: the media type after the last colon when it looks
 * like one (`type/subtype`), else the whole text is the path.
 *
 * @param text The argument.
 * @returns The file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseArtifactFile } from "./artifact.ts";
 * assert.deepEqual(parseArtifactFile("sbom.json:application/spdx+json"), { path: "sbom.json", mediaType: "application/spdx+json" });
 * assert.deepEqual(parseArtifactFile("notes.txt"), { path: "notes.txt" });
 * ```
 */
export function parseArtifactFile(text: string): ArtifactFile {
  const colon = text.lastIndexOf(":");
  const type = colon > 0 ? text.slice(colon + 1) : "";
  if (/^[\w.+-]+\/[\w.+-]+$/.test(type)) {
    return { path: text.slice(0, colon), mediaType: type };
  }
  return { path: text };
}

/** Options of {@linkcode pushArtifact}. */
export interface PushArtifactOptions extends CallOptions {
  /** The artifact type (required by the guidance when the config is empty). */
  readonly artifactType: string;
  /** The manifest's annotations. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** The subject, for a referrer. */
  readonly subject?: Descriptor;
  /**
   * A config of its own instead of the empty one; without a media type it is labelled
   * `application/vnd.unknown.config.v1+json`.
   */
  readonly config?: ArtifactFile;
  /** Also name the manifest by this tag. */
  readonly tag?: string;
}

/** What {@linkcode pushArtifact} stored. */
export interface PushedArtifact {
  /** The manifest's descriptor (with `artifactType`). */
  readonly descriptor: Descriptor;
  /** The manifest. */
  readonly manifest: ImageManifest;
}

async function pushBlob(
  store: Store,
  descriptor: Descriptor,
  source: BlobSource,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (await store.exists(descriptor, { signal })) return;
  await store.push(descriptor, source, { signal });
}

async function fileDescriptor(
  file: ArtifactFile,
  annotate: boolean,
): Promise<{ descriptor: Descriptor; source: BlobSource }> {
  const { digest, size } = await digestOfFile(file.path);
  const descriptor: Descriptor = {
    mediaType: file.mediaType ?? DEFAULT_FILE_MEDIA_TYPE,
    digest,
    size,
    ...(annotate
      ? {
        annotations: { [TITLE_ANNOTATION]: file.title ?? basename(file.path) },
      }
      : {}),
  };
  return { descriptor, source: await fileSource(file.path) };
}

/**
 * Pushes an artifact into any store: each file as a blob (skipped when there), the config (the
 * empty one unless given), then the manifest by digest, under `tag` when given. A store with a
 * `subject` but no referrers API of its own (distribution 2.8) updates the fallback tag as it
 * takes the manifest (see `remoteStore`).
 *
 * @param store Where it goes.
 * @param files Its files, in order.
 * @param options Artifact type, annotations, subject, config, tag and a signal.
 * @returns The manifest and its descriptor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pushArtifact } from "./artifact.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * const path = await Deno.makeTempFile({ suffix: ".txt" });
 * await Deno.writeTextFile(path, "hello");
 * const store = memoryStore();
 * const { manifest } = await pushArtifact(store, [{ path, mediaType: "text/plain" }], { artifactType: "application/x.note", tag: "v1" });
 * assert.equal(manifest.layers[0].mediaType, "text/plain");
 * assert.equal(manifest.config.mediaType, "application/vnd.oci.empty.v1+json");
 * assert.equal((await store.resolve("v1")).mediaType, "application/vnd.oci.image.manifest.v1+json");
 * await Deno.remove(path);
 * ```
 */
export async function pushArtifact(
  store: Store,
  files: readonly ArtifactFile[],
  options: PushArtifactOptions,
): Promise<PushedArtifact> {
  const { signal } = options;
  const layers: Descriptor[] = [];
  for (const file of files) {
    const { descriptor, source } = await fileDescriptor(file, true);
    await pushBlob(store, descriptor, source, signal);
    layers.push(descriptor);
  }
  let config = EMPTY_DESCRIPTOR;
  if (options.config !== undefined) {
    const { descriptor, source } = await fileDescriptor(
      {
        ...options.config,
        mediaType: options.config.mediaType ?? UNKNOWN_CONFIG_MEDIA_TYPE,
      },
      false,
    );
    config = descriptor;
    await pushBlob(store, descriptor, source, signal);
  } else {
    await pushBlob(store, config, bytesSource(EMPTY_BYTES), signal);
  }
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    artifactType: options.artifactType,
    config,
    // The guidance: an artifact without files has the empty descriptor as its one layer.
    layers: layers.length > 0 ? layers : [EMPTY_DESCRIPTOR],
    ...(options.subject !== undefined
      ? {
        subject: {
          mediaType: options.subject.mediaType,
          digest: options.subject.digest,
          size: options.subject.size,
        },
      }
      : {}),
    ...(options.annotations !== undefined &&
        Object.keys(options.annotations).length
      ? { annotations: options.annotations }
      : {}),
  };
  const { bytes, digest, size } = encodeManifest(manifest);
  const descriptor: Descriptor = {
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    digest,
    size,
    artifactType: options.artifactType,
  };
  await store.push(descriptor, bytesSource(bytes), {
    tag: options.tag,
    signal,
  });
  return { descriptor, manifest };
}
