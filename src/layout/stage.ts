/**
 * The stage: verified downloads into an OCI image layout, reused when already there.
 *
 * @module
 */
import type { Descriptor } from "../image/manifest.ts";
import type { ImageReference } from "../reference/reference.ts";
import { fetchBlob, type FetchBlobOptions } from "../registry/blobs.ts";
import type { OciLayout } from "./layout.ts";

/**
 * Makes sure a blob of a repository is in the layout: a good copy already there (right size)
 * costs no request; otherwise the blob is downloaded, verified while it streams into a
 * temporary file, and renamed into place. A damaged copy (wrong size) is replaced.
 *
 * @param layout The stage.
 * @param ref The repository to download from.
 * @param descriptor The blob.
 * @param options Transport, signal, progress, log, and `verify` to re-hash a cached copy.
 * @returns The blob's path in the layout.
 * @throws {DigestMismatchError} When the download does not match; nothing is kept.
 *
 * @example
 * ```ts ignore
 * const path = await stageBlob(await openLayout("cache"), ref, manifest.config);
 * ```
 */
export async function stageBlob(
  layout: OciLayout,
  ref: ImageReference,
  descriptor: Descriptor,
  options: FetchBlobOptions & { verify?: boolean } = {},
): Promise<string> {
  const cached = await layout.hasBlob(descriptor.digest, {
    size: descriptor.size,
    verify: options.verify,
  });
  if (cached) return layout.blobPath(descriptor.digest);
  const stream = await fetchBlob(ref, descriptor.digest, {
    ...options,
    size: descriptor.size,
  });
  return await layout.writeBlob(descriptor.digest, stream, {
    size: descriptor.size,
  });
}
