/**
 * Referrers over any store: attach an artifact to a subject, list a subject's referrers (as a
 * tree, referrers of referrers included), and copy them along with an image.
 *
 * A store with referrers of its own (`ReferrerLister`: memory, layouts, the embedded registry's
 * repositories, and `remoteStore`, by the referrers API or else the fallback tag) answers
 * itself; any other store is read through the fallback tag `sha256-<hex>`.
 *
 * @module
 */
import type { Descriptor, ImageIndex } from "../oci/manifest.ts";
import { isIndexMediaType, isManifestMediaType } from "../oci/media_types.ts";
import { referrersTag } from "../store/remote/referrers.ts";
import {
  type CallOptions,
  fetchManifest,
  isManifestOrIndex,
  type ReferrerLister,
  type Store,
} from "../store/store.ts";
import {
  type ArtifactFile,
  pushArtifact,
  type PushArtifactOptions,
  type PushedArtifact,
} from "./artifact.ts";
import { copyGraph, type CopyOptions } from "./copy.ts";

/** Whether a store lists referrers itself. */
function isReferrerLister<S extends Store>(
  store: S,
): store is S & ReferrerLister {
  return typeof (store as Partial<ReferrerLister>).referrers === "function";
}

/** Options of {@linkcode listReferrers}. */
export interface ListReferrersOptions extends CallOptions {
  /** Only referrers of this artifact type. */
  readonly artifactType?: string;
}

/**
 * The referrers of a subject in a store: its own answer when it lists referrers, else the
 * entries of the fallback index under the tag `sha256-<hex>` (none when there is no such tag).
 *
 * @param store The store.
 * @param subject The subject's digest.
 * @param options Artifact type and a signal.
 * @returns The referrers' descriptors, with `artifactType` and annotations.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listReferrers } from "./referrers.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * assert.deepEqual(await listReferrers(memoryStore(), `sha256:${"a".repeat(64)}`), []);
 * ```
 */
export async function listReferrers(
  store: Store,
  subject: string,
  options: ListReferrersOptions = {},
): Promise<Descriptor[]> {
  if (isReferrerLister(store)) return await store.referrers(subject, options);
  let index;
  try {
    index = await fetchManifest(store, referrersTag(subject), options);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
  const manifests = (index.document as ImageIndex).manifests ?? [];
  return manifests.filter((d) =>
    options.artifactType === undefined ||
    d.artifactType === options.artifactType
  );
}

function isNotFound(error: unknown): boolean {
  return error instanceof Deno.errors.NotFound ||
    (error as { status?: number })?.status === 404;
}

/**
 * Pushes an artifact whose `subject` is the manifest or index `subject` names (a tag or digest
 * in the same store): the files as layers with their titles, the empty config, `artifactType`.
 * On a registry without the referrers API the fallback index is updated too.
 *
 * @param store The store the subject is in.
 * @param subject The subject's tag or digest.
 * @param files The artifact's files.
 * @param options Artifact type, annotations, config and a signal.
 * @returns The artifact pushed, and the subject's descriptor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { attachArtifact, listReferrers } from "./referrers.ts";
 * import { pushArtifact } from "./artifact.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * const store = memoryStore();
 * const image = await pushArtifact(store, [], { artifactType: "application/x.app", tag: "v1" });
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "signed");
 * const { descriptor } = await attachArtifact(store, "v1", [{ path }], { artifactType: "application/x.sig" });
 * const found = await listReferrers(store, image.descriptor.digest);
 * assert.deepEqual(found.map((d) => [d.digest, d.artifactType]), [[descriptor.digest, "application/x.sig"]]);
 * await Deno.remove(path);
 * ```
 */
export async function attachArtifact(
  store: Store,
  subject: string,
  files: readonly ArtifactFile[],
  options: Omit<PushArtifactOptions, "subject" | "tag">,
): Promise<PushedArtifact & { subject: Descriptor }> {
  const descriptor = await store.resolve(subject, options);
  const pushed = await pushArtifact(store, files, {
    ...options,
    subject: descriptor,
  });
  return { ...pushed, subject: descriptor };
}

/** One referrer and its own referrers. */
export interface ReferrerNode {
  /** The referrer. */
  readonly descriptor: Descriptor;
  /** What refers to it. */
  readonly referrers: readonly ReferrerNode[];
}

/** Options of {@linkcode referrerTree}. */
export interface ReferrerTreeOptions extends ListReferrersOptions {
  /** How many levels of referrers of referrers to follow. @default {8} */
  readonly maxDepth?: number;
}

/**
 * The referrers of a subject, each with its own referrers, down to `maxDepth`; the artifact
 * type filters the first level only (a signature of an SBOM shows under the SBOM).
 *
 * @param store The store.
 * @param subject The subject's digest.
 * @param options Artifact type of the first level, depth and a signal.
 * @returns The tree's first level.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { referrerTree } from "./referrers.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * assert.deepEqual(await referrerTree(memoryStore(), `sha256:${"a".repeat(64)}`), []);
 * ```
 */
export async function referrerTree(
  store: Store,
  subject: string,
  options: ReferrerTreeOptions = {},
): Promise<ReferrerNode[]> {
  const maxDepth = options.maxDepth ?? 8;
  const seen = new Set<string>([subject]);
  const level = async (
    digest: string,
    depth: number,
    artifactType: string | undefined,
  ): Promise<ReferrerNode[]> => {
    const found = await listReferrers(store, digest, {
      artifactType,
      signal: options.signal,
    });
    const nodes: ReferrerNode[] = [];
    for (const descriptor of found) {
      if (seen.has(descriptor.digest)) continue;
      seen.add(descriptor.digest);
      nodes.push({
        descriptor,
        referrers: depth + 1 < maxDepth
          ? await level(descriptor.digest, depth + 1, undefined)
          : [],
      });
    }
    return nodes;
  };
  return await level(subject, 0, options.artifactType);
}

/** What {@linkcode copyReferrers} did. */
export interface CopyReferrersResult {
  /** The referrers copied (manifests and indexes), in the order they were. */
  readonly referrers: readonly Descriptor[];
  /** Blobs whose bytes moved. */
  readonly blobsCopied: number;
}

/**
 * Copies the referrers graph of an image between any two stores, recursively: the referrers of
 * the root (and of each manifest of an index), each with its blobs by {@linkcode copyGraph},
 * then their own referrers. Copy the image first: a referrer arrives after its subject. On a
 * registry target without the referrers API, each referrer enters the fallback index.
 *
 * @param source Where the image and its referrers are.
 * @param target Where they go.
 * @param root The image's manifest or index.
 * @param options Concurrency, log, attempts, depth and a signal.
 * @returns The referrers copied and the blobs that moved.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { attachArtifact, copyReferrers, listReferrers } from "./referrers.ts";
 * import { pushArtifact } from "./artifact.ts";
 * import { copyGraph } from "./copy.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * const source = memoryStore();
 * const image = await pushArtifact(source, [], { artifactType: "application/x.app", tag: "v1" });
 * await attachArtifact(source, "v1", [], { artifactType: "application/x.sig" });
 * const target = memoryStore();
 * await copyGraph(source, target, image.descriptor, { tag: "v1" });
 * const { referrers } = await copyReferrers(source, target, image.descriptor);
 * assert.equal(referrers.length, 1);
 * assert.equal((await listReferrers(target, image.descriptor.digest)).length, 1);
 * ```
 */
export async function copyReferrers(
  source: Store,
  target: Store,
  root: Descriptor,
  options: Omit<CopyOptions, "platform" | "tag" | "cache"> = {},
): Promise<CopyReferrersResult> {
  const { signal } = options;
  const copied: Descriptor[] = [];
  let blobsCopied = 0;
  const seen = new Set<string>();
  const subjectsOf = async (descriptor: Descriptor): Promise<Descriptor[]> => {
    if (!isIndexMediaType(descriptor.mediaType)) return [descriptor];
    const { document } = await fetchManifest(source, descriptor, { signal });
    return [
      descriptor,
      ...(document as ImageIndex).manifests.filter((d) =>
        isManifestMediaType(d.mediaType)
      ),
    ];
  };
  const visit = async (subject: Descriptor): Promise<void> => {
    for (const candidate of await subjectsOf(subject)) {
      if (seen.has(candidate.digest)) continue;
      seen.add(candidate.digest);
      const referrers = await listReferrers(source, candidate.digest, {
        signal,
      });
      for (const referrer of referrers) {
        if (!isManifestOrIndex(referrer.mediaType)) continue;
        if (seen.has(referrer.digest)) continue;
        // By digest only: the image's tag stays on the image.
        const result = await copyGraph(source, target, referrer, {
          ...options,
          tag: undefined,
        });
        blobsCopied += result.blobsCopied;
        copied.push(referrer);
        options.log?.(
          `Copied referrer ${referrer.digest}${
            referrer.artifactType ? ` (${referrer.artifactType})` : ""
          } of ${candidate.digest} to ${target.name}`,
        );
        await visit(referrer);
      }
    }
  };
  await visit(root);
  return { referrers: copied, blobsCopied };
}
