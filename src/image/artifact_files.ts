/**
 * Pulling an artifact: telling an image from an artifact (and from neither), and writing an
 * artifact's files by their titles, each verified under a temporary name and renamed, never
 * outside the target or through a symlink.
 *
 * @module
 */
import { lstatOrUndefined } from "../io/files.ts";
import { join } from "node:path";
import type { Descriptor, ImageManifest } from "../oci/manifest.ts";
import {
  DOCKER_CONFIG_MEDIA_TYPE,
  OCI_CONFIG_MEDIA_TYPE,
  OCI_EMPTY_MEDIA_TYPE,
} from "../oci/media_types.ts";
import type { Store } from "../store/store.ts";
import type { OciLayout } from "../store/layout_store.ts";
import { downloadBlob } from "./blob.ts";
import { copyBlobs, type CopyOptions } from "./copy.ts";
import { TITLE_ANNOTATION } from "./artifact.ts";

/** What a manifest holds, for a pull. */
export type ManifestKind = "image" | "artifact" | "neither";

/** The config media types of images. */
const IMAGE_CONFIG_TYPES = [OCI_CONFIG_MEDIA_TYPE, DOCKER_CONFIG_MEDIA_TYPE];

/** The empty descriptor an artifact without files lists as its one layer. */
function isEmptyLayer(layer: Descriptor): boolean {
  return layer.mediaType === OCI_EMPTY_MEDIA_TYPE &&
    layer.annotations?.[TITLE_ANNOTATION] === undefined;
}

/**
 * Tells what a manifest is by its config's media type and its layers' titles: an image has an
 * image config (OCI or Docker); an artifact has another config (the empty one, oras's) and a
 * title on every layer but the empty one; anything else is neither. An image config without
 * `rootfs.diff_ids` (spack's `index.spack` has `{}`) makes the manifest neither too, which only
 * the config's bytes tell: see {@linkcode NotPullableError}.
 *
 * @param manifest The manifest.
 * @returns Its kind.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { manifestKind } from "./artifact_files.ts";
 * import { EMPTY_DESCRIPTOR } from "./artifact.ts";
 * const layer = { mediaType: "text/plain", digest: "sha256:" + "0".repeat(64), size: 1 };
 * const mediaType = "application/vnd.oci.image.manifest.v1+json";
 * assert.equal(manifestKind({ schemaVersion: 2, mediaType, config: EMPTY_DESCRIPTOR, layers: [{ ...layer, annotations: { "org.opencontainers.image.title": "a.txt" } }] }), "artifact");
 * assert.equal(manifestKind({ schemaVersion: 2, mediaType, config: EMPTY_DESCRIPTOR, layers: [layer] }), "neither");
 * ```
 */
export function manifestKind(manifest: ImageManifest): ManifestKind {
  if (IMAGE_CONFIG_TYPES.includes(manifest.config.mediaType)) return "image";
  const layers = manifest.layers.filter((layer) => !isEmptyLayer(layer));
  return layers.every((layer) => layer.annotations?.[TITLE_ANNOTATION])
    ? "artifact"
    : "neither";
}

/**
 * A manifest that is neither an image (an image config with `rootfs.diff_ids`, tar layers) nor
 * an artifact with titled files, such as spack's `index.spack` (one JSON blob labelled as a
 * tar+gzip layer, an empty `{}` config): its blobs can still be read one by one.
 */
export class NotPullableError extends Error {
  /** The manifest's name, as the message shows it. */
  readonly image: string;

  /**
   * Creates the error.
   *
   * @param image The manifest's name.
   * @param manifest The manifest.
   * @param why What makes it neither.
   */
  constructor(image: string, manifest: ImageManifest, why: string) {
    const layers = manifest.layers.map((l) => `${l.digest} (${l.mediaType})`)
      .join(", ");
    super(
      `Cannot pull ${image}: it is neither an image nor an artifact with titled files (${why}; config ${manifest.config.mediaType}, layers ${
        layers || "none"
      }); read its blobs with oci blob get <repo>@<digest>`,
    );
    this.name = "NotPullableError";
    this.image = image;
  }
}

/** A layer title that would be written outside the target, or cannot be written safely. */
export class UnsafeTitleError extends Error {
  /** The title. */
  readonly title: string;

  /**
   * Creates the error.
   *
   * @param title The title.
   * @param reason Why it is refused.
   */
  constructor(title: string, reason: string) {
    const shown = title.length > 300 ? `${title.slice(0, 300)}…` : title;
    super(`Cannot write artifact file "${shown}": ${reason}`);
    this.name = "UnsafeTitleError";
    this.title = title;
  }
}

/** A title's path components; refuses absolute titles, `..`, NUL and empty components. */
function titleParts(title: string): string[] {
  if (title.includes("\0")) {
    throw new UnsafeTitleError(title, "it has a NUL byte");
  }
  if (title.startsWith("/") || /^[A-Za-z]:/.test(title)) {
    throw new UnsafeTitleError(title, "it is an absolute path");
  }
  const parts = title.split(/[/\\]/).filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) {
    throw new UnsafeTitleError(title, "it has a .. component");
  }
  if (parts.length === 0) throw new UnsafeTitleError(title, "it is empty");
  return parts;
}

/** Makes the parents of a title under `target`, refusing any that is a symlink or a file. */
async function makeParents(
  target: string,
  title: string,
  parents: readonly string[],
): Promise<string> {
  let current = target;
  for (const part of parents) {
    current = join(current, part);
    const info = await lstatOrUndefined(current);
    if (info === undefined) {
      await Deno.mkdir(current);
    } else if (info.isSymlink) {
      throw new UnsafeTitleError(
        title,
        `its parent "${part}" is a symlink, and nothing is written through a link`,
      );
    } else if (!info.isDirectory) {
      throw new UnsafeTitleError(
        title,
        `its parent "${part}" is not a directory`,
      );
    }
  }
  return current;
}

/** Options of {@linkcode writeArtifactFiles}. */
export interface WriteArtifactFilesOptions extends
  Pick<
    CopyOptions,
    "signal" | "attempts" | "onRetry" | "concurrency" | "onBlob"
  > {
  /**
   * A stage (the pull's cache) the files pass through: copied into it first with `copyBlobs`
   * (verified, reused when there, started again from the source when a download fails), then
   * written from it. Without one, each file streams straight from `store`.
   */
  readonly stage?: OciLayout;
}

/** One file an artifact pull wrote. */
export interface ArtifactFileWritten {
  /** Its title, the path under the target. */
  readonly title: string;
  /** Its layer. */
  readonly descriptor: Descriptor;
}

/**
 * Writes an artifact's files into `target` by their titles: every title is checked first (none
 * absolute, with `..` or a NUL, none twice), then each blob streams into a temporary file beside
 * its place, verified against its descriptor, and is renamed there; a parent directory that is
 * a symlink is refused, so nothing is written through a link.
 *
 * @param store Where the blobs are.
 * @param manifest The artifact's manifest.
 * @param target The directory (made when missing).
 * @param options A stage to copy the blobs through (with attempts, concurrency and progress),
 * and a signal.
 * @returns The files written, in the manifest's order.
 * @throws {UnsafeTitleError} For a title that escapes the target.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeArtifactFiles } from "./artifact_files.ts";
 * import { pushArtifact } from "./artifact.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.txt`, "a");
 * const store = memoryStore();
 * const { manifest } = await pushArtifact(store, [{ path: `${dir}/a.txt` }], { artifactType: "application/x.a" });
 * await writeArtifactFiles(store, manifest, `${dir}/out`);
 * assert.equal(await Deno.readTextFile(`${dir}/out/a.txt`), "a");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeArtifactFiles(
  store: Store,
  manifest: ImageManifest,
  target: string,
  options: WriteArtifactFilesOptions = {},
): Promise<ArtifactFileWritten[]> {
  const files = manifest.layers.filter((layer) => !isEmptyLayer(layer)).map(
    (descriptor) => {
      const title = descriptor.annotations?.[TITLE_ANNOTATION] ?? "";
      return { title, descriptor, parts: titleParts(title) };
    },
  );
  const seen = new Set<string>();
  for (const { title, parts } of files) {
    const key = parts.join("/");
    if (seen.has(key)) {
      throw new UnsafeTitleError(title, "another layer has the same title");
    }
    seen.add(key);
  }
  const { stage, signal } = options;
  if (stage !== undefined) {
    await copyBlobs(store, stage, files.map((f) => f.descriptor), options);
  }
  const from = stage ?? store;
  await Deno.mkdir(target, { recursive: true });
  for (const { title, descriptor, parts } of files) {
    const parent = await makeParents(target, title, parts.slice(0, -1));
    const path = join(parent, parts[parts.length - 1]);
    if ((await lstatOrUndefined(path))?.isDirectory) {
      throw new UnsafeTitleError(title, "a directory is in its place");
    }
    await downloadBlob(from, descriptor, path, { signal });
  }
  return files.map(({ title, descriptor }) => ({ title, descriptor }));
}
