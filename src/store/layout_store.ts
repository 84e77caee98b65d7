/**
 * A {@linkcode Store} over an OCI image layout on disk.
 *
 * @module
 */
import { DigestMismatchError, digestOf, parseDigest } from "../oci/digest.ts";
import { verifyStream } from "../oci/digest.ts";
import {
  ManifestError,
  MAX_MANIFEST_SIZE,
  parseManifest,
} from "../oci/parse_manifest.ts";
import {
  type OciLayout,
  openLayout,
  REF_NAME_ANNOTATION,
} from "../layout/layout.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { isManifestOrIndex, type Store, type TagLister } from "./store.ts";

/**
 * A store over an OCI image layout: blobs are verified on the way in (temporary file, then
 * rename) and on the way out; manifests are blobs too, named in `index.json` by tag.
 *
 * @param layout The layout, or its directory (created when missing).
 * @returns The store.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layoutStore } from "./layout_store.ts";
 * import { bytesSource } from "../transport/request_body.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const dir = await Deno.makeTempDir();
 * const store = await layoutStore(dir);
 * const descriptor = { mediaType: "application/octet-stream", digest: digestOf("x"), size: 1 };
 * await store.push(descriptor, bytesSource("x"));
 * assert.ok(await store.exists(descriptor));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function layoutStore(
  layout: OciLayout | string,
): Promise<Store & TagLister> {
  const opened = typeof layout === "string" ? await openLayout(layout) : layout;
  /** Reads, verifies and parses a manifest by digest or tag (today's layout checks). */
  const readManifest = async (reference: string): Promise<Descriptor> => {
    let descriptor;
    try {
      parseDigest(reference);
      descriptor = { digest: reference, mediaType: "", size: -1 };
    } catch {
      descriptor = await opened.resolve(reference);
      if (descriptor === undefined) {
        throw new Deno.errors.NotFound(
          `Cannot find "${reference}" in OCI layout ${opened.root}: no such tag in index.json`,
        );
      }
    }
    const path = opened.blobPath(descriptor.digest);
    const context = `Cannot read manifest ${path}`;
    const info = await Deno.stat(path);
    if (info.size > MAX_MANIFEST_SIZE) {
      throw new ManifestError(
        `${context}: the manifest is larger than ${MAX_MANIFEST_SIZE} bytes`,
      );
    }
    const bytes = await Deno.readFile(path);
    const digest = digestOf(bytes, parseDigest(descriptor.digest).algorithm);
    if (digest !== descriptor.digest) {
      throw new DigestMismatchError(descriptor.digest, {
        digest,
        size: bytes.byteLength,
      }, { context: path });
    }
    // The media type index.json gives is read as a registry's Content-Type is.
    const parsed = parseManifest(bytes, descriptor.mediaType, {
      lenient: true,
      context,
    });
    return { mediaType: parsed.mediaType, digest, size: bytes.byteLength };
  };
  return {
    name: `oci:${opened.root}`,
    exists(descriptor, call) {
      call?.signal?.throwIfAborted();
      return opened.hasBlob(descriptor.digest, { size: descriptor.size });
    },
    async fetch(descriptor, call) {
      call?.signal?.throwIfAborted();
      return verifyStream(
        await opened.readBlob(descriptor.digest),
        descriptor.digest,
        {
          size: descriptor.size,
          context: opened.blobPath(descriptor.digest),
          signal: call?.signal,
        },
      );
    },
    async push(descriptor, source, call = {}) {
      call.signal?.throwIfAborted();
      if (
        !(await opened.hasBlob(descriptor.digest, { size: descriptor.size }))
      ) {
        await opened.writeBlob(descriptor.digest, source.open(), {
          size: descriptor.size,
          signal: call.signal,
        });
      }
      if (call.tag !== undefined && isManifestOrIndex(descriptor.mediaType)) {
        await opened.tag(descriptor, call.tag);
      }
    },
    resolve(reference, call) {
      call?.signal?.throwIfAborted();
      return readManifest(reference);
    },
    async listTags(call) {
      call?.signal?.throwIfAborted();
      const index = await opened.readIndex();
      return index.manifests.flatMap((entry) => {
        const name = entry.annotations?.[REF_NAME_ANNOTATION];
        return name === undefined ? [] : [name];
      });
    },
  };
}
