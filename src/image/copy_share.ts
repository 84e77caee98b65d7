/**
 * The writes to one target that copies running at the same time share, so that no two of them
 * write the same blob or manifest at once. Distribution 2.8 (filesystem storage) rewrites a
 * repository's link file on every blob upload, mount and manifest put (truncate, then write): a
 * manifest put that reads a link another request is rewriting finds it empty and is refused
 * with `400 DIGEST_INVALID` and `MANIFEST_BLOB_UNKNOWN`. Mirroring tags that share blobs
 * (`copyAllTags`) did exactly that.
 *
 * @module
 */

/** Writes in flight (or done) to one target, by digest; see {@linkcode createCopyShare}. */
export interface CopyShare {
  /** Each blob's check-and-copy, by digest: settled once the target has the blob. */
  readonly blobs: Map<string, Promise<void>>;
  /** The last push of each manifest, by digest (a tagged push chains after an earlier one). */
  readonly manifests: Map<string, Promise<void>>;
}

/**
 * A share for copies to one target that run at the same time (`CopyOptions.share`): a blob
 * another copy checks or moves is awaited, not moved again; a manifest another copy pushes is
 * awaited, and pushes of one manifest under several tags go one after another. `copyAllTags`
 * makes one for its tags.
 *
 * @returns An empty share.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createCopyShare } from "./copy_share.ts";
 * assert.equal(createCopyShare().blobs.size, 0);
 * ```
 */
export function createCopyShare(): CopyShare {
  return { blobs: new Map(), manifests: new Map() };
}

/**
 * Runs `push` for a manifest unless another copy sharing `share` pushes (or pushed) it: an
 * untagged push awaits that one (and pushes itself only if it failed); a tagged push, which must
 * happen, starts once the earlier push of the same digest has ended.
 */
export async function shareManifestPush(
  share: CopyShare | undefined,
  digest: string,
  tagged: boolean,
  push: () => Promise<void>,
): Promise<void> {
  if (share === undefined) return await push();
  const before = share.manifests.get(digest);
  if (!tagged && before !== undefined) {
    try {
      return await before;
    } catch {
      // That push failed: this copy pushes the manifest itself.
    }
  }
  const mine = (before ?? Promise.resolve()).catch(() => {}).then(push);
  share.manifests.set(digest, mine);
  await mine;
}
