/**
 * The stage: verified downloads into an OCI image layout, reused when already there.
 *
 * @module
 */
import type { Descriptor } from "../oci/manifest.ts";
import type { ImageReference } from "../oci/reference.ts";
import { fetchBlob, type FetchBlobOptions } from "../store/remote/blobs.ts";
import type { OciLayout } from "./layout.ts";
import { retryTransient } from "../transport/transient.ts";

/** Options of {@linkcode stageBlob}. */
export interface StageBlobOptions extends FetchBlobOptions {
  /** Re-hash a cached copy before trusting it. */
  readonly verify?: boolean;
  /**
   * Downloads in all when the bytes arrive damaged or cut short.
   * @default {5}
   */
  readonly attempts?: number;
  /** Told before a download starts again. */
  readonly onRetry?: (error: unknown, attempt: number) => void;
}

/**
 * Makes sure a blob of a repository is in the layout: a good copy already there (right size)
 * costs no request; otherwise the blob is downloaded, verified while it streams into a
 * temporary file, and renamed into place. A damaged copy (wrong size) is replaced. A download
 * whose bytes do not match, or that is cut short, is thrown away and fetched again. An abort of
 * `options.signal` closes the download's connection, removes the temporary file and rejects
 * with the signal's reason.
 *
 * @param layout The stage.
 * @param ref The repository to download from.
 * @param descriptor The blob.
 * @param options Transport, signal, progress, log, `verify` to re-hash a cached copy, attempts.
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
  options: StageBlobOptions = {},
): Promise<string> {
  const cached = await layout.hasBlob(descriptor.digest, {
    size: descriptor.size,
    verify: options.verify,
  });
  if (cached) return layout.blobPath(descriptor.digest);
  // Bytes that arrived wrong or cut short, and failures that outlasted the opener's own
  // retries, start the download again; refusals (401, 403, 404) do not.
  return await retryTransient(async () => {
    const stream = await fetchBlob(ref, descriptor.digest, {
      ...options,
      size: descriptor.size,
    });
    return await layout.writeBlob(descriptor.digest, stream, {
      size: descriptor.size,
      signal: options.signal,
    });
  }, options);
}
