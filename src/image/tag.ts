/**
 * Retagging over any store: the same manifest bytes put under more tags, no blob moved.
 *
 * @module
 */
import type { Descriptor } from "../oci/manifest.ts";
import { type CallOptions, fetchManifest, type Store } from "../store/store.ts";
import { bytesSource } from "../transport/request_body.ts";

/**
 * Names the manifest or index a reference resolves to by more tags: its exact bytes are put
 * under each tag (a registry then has nothing to fetch or check but the manifest itself).
 *
 * @param store The store.
 * @param reference The tag or digest there is.
 * @param tags The new tags.
 * @param options A signal.
 * @returns The descriptor tagged.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tagManifest } from "./tag.ts";
 * import { pushArtifact } from "./artifact.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * const store = memoryStore();
 * const { descriptor } = await pushArtifact(store, [], { artifactType: "application/x.a", tag: "v1" });
 * await tagManifest(store, "v1", ["latest", "stable"]);
 * assert.equal((await store.resolve("stable")).digest, descriptor.digest);
 * ```
 */
export async function tagManifest(
  store: Store,
  reference: string,
  tags: readonly string[],
  options: CallOptions = {},
): Promise<Descriptor> {
  const { descriptor, bytes } = await fetchManifest(store, reference, options);
  for (const tag of tags) {
    await store.push(descriptor, bytesSource(bytes), {
      tag,
      signal: options.signal,
    });
  }
  return descriptor;
}
