/**
 * Mirrors a whole repository between any two stores: every tag, several tags at once, a tag
 * whose digest the target already has under that tag skipped, one result per tag.
 *
 * @module
 */
import type { Descriptor } from "../oci/manifest.ts";
import type { Store, TagLister } from "../store/store.ts";
import { copyGraph, type CopyOptions } from "./copy.ts";
import { copyReferrers } from "./referrers.ts";
import { createCopyShare } from "./copy_share.ts";

/** Options of {@linkcode copyAllTags}. */
export interface CopyAllTagsOptions
  extends Omit<CopyOptions, "platform" | "tag"> {
  /** Tags copied at the same time (each moves `concurrency` blobs at once). @default {4} */
  readonly tagConcurrency?: number;
  /** Copy each image's referrers too (see `copyReferrers`). @default {false} */
  readonly referrers?: boolean;
  /** Told as each tag is done. */
  readonly onTag?: (result: TagCopyResult) => void;
}

/** What became of one tag. */
export interface TagCopyResult {
  /** The tag. */
  readonly tag: string;
  /** `copied`, `skipped` (the target had this digest under the tag), or `failed`. */
  readonly status: "copied" | "skipped" | "failed";
  /** The digest at the source (absent when it could not be resolved). */
  readonly digest?: string;
  /** Blobs whose bytes moved. */
  readonly blobsCopied: number;
  /** Why it failed. */
  readonly error?: unknown;
}

async function resolveOrUndefined(
  store: Store,
  tag: string,
  signal: AbortSignal | undefined,
): Promise<Descriptor | undefined> {
  try {
    return await store.resolve(tag, { signal });
  } catch (error) {
    if (
      error instanceof Deno.errors.NotFound ||
      (error as { status?: number })?.status === 404
    ) {
      return undefined;
    }
    throw error;
  }
}

/**
 * Copies every tag of `source` to `target` (the whole index of each, as it is), at most
 * `tagConcurrency` tags at once; a tag the target already has with the same digest is skipped.
 * One tag failing does not stop the others: each has its result, in the source's tag order.
 * A blob or manifest several tags share is written once, and never by two of them at once.
 *
 * @param source Where the tags are.
 * @param target Where they go.
 * @param options Tag and blob concurrency, referrers, a per-tag callback and a signal.
 * @returns One result per tag.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyAllTags } from "./copy_tags.ts";
 * import { pushArtifact } from "./artifact.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * const source = memoryStore();
 * await pushArtifact(source, [], { artifactType: "application/x.a", tag: "a" });
 * await pushArtifact(source, [], { artifactType: "application/x.b", tag: "b" });
 * const target = memoryStore();
 * assert.deepEqual((await copyAllTags(source, target)).map((r) => r.status), ["copied", "copied"]);
 * assert.deepEqual((await copyAllTags(source, target)).map((r) => r.status), ["skipped", "skipped"]);
 * ```
 */
export async function copyAllTags(
  source: Store & TagLister,
  target: Store,
  options: CopyAllTagsOptions = {},
): Promise<TagCopyResult[]> {
  const { signal } = options;
  // Tags sharing blobs or manifests write each once, never two at once (see copy_share.ts).
  options = { ...options, share: options.share ?? createCopyShare() };
  const tags = await source.listTags({ signal });
  const results: TagCopyResult[] = new Array(tags.length);
  const copyTag = async (tag: string): Promise<TagCopyResult> => {
    let digest: string | undefined;
    try {
      const descriptor = await source.resolve(tag, { signal });
      digest = descriptor.digest;
      const there = await resolveOrUndefined(target, tag, signal);
      if (there?.digest === descriptor.digest) {
        return { tag, status: "skipped", digest, blobsCopied: 0 };
      }
      const copied = await copyGraph(source, target, descriptor, {
        ...options,
        tag,
      });
      let blobsCopied = copied.blobsCopied;
      if (options.referrers) {
        blobsCopied +=
          (await copyReferrers(source, target, descriptor, options))
            .blobsCopied;
      }
      return { tag, status: "copied", digest, blobsCopied };
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      return { tag, status: "failed", digest, blobsCopied: 0, error };
    }
  };
  let next = 0;
  const limit = Math.max(1, Math.min(options.tagConcurrency ?? 4, tags.length));
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < tags.length) {
        signal?.throwIfAborted();
        const i = next++;
        results[i] = await copyTag(tags[i]);
        options.onTag?.(results[i]);
      }
    }),
  );
  return results;
}
