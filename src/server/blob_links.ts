/**
 * Which blobs each repository of the embedded registry may read (those pushed or mounted
 * there): a blob in the shared store is visible through a repository only once linked to it.
 *
 * @module
 */
import { join } from "node:path";
import { parseDigest } from "../oci/digest.ts";
import { statOrUndefined } from "../io/files.ts";

/** The blobs linked to each repository. */
export interface BlobLinks {
  /** Whether the blob is linked to the repository. */
  has(repository: string, digest: string): Promise<boolean>;
  /** Links a blob to a repository (pushed or mounted there). */
  add(repository: string, digest: string): Promise<void>;
  /** Unlinks a blob from a repository; false when it was not linked. */
  remove(repository: string, digest: string): Promise<boolean>;
}

/**
 * Links kept in memory.
 *
 * @returns The links.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryLinks } from "./blob_links.ts";
 * const links = memoryLinks();
 * await links.add("a", "sha256:00");
 * assert.ok(await links.has("a", "sha256:00"));
 * assert.ok(!(await links.has("b", "sha256:00")));
 * ```
 */
export function memoryLinks(): BlobLinks {
  const links = new Map<string, Set<string>>();
  return {
    has: (repository, digest) =>
      Promise.resolve(links.get(repository)?.has(digest) ?? false),
    add(repository, digest) {
      let set = links.get(repository);
      if (set === undefined) links.set(repository, set = new Set());
      set.add(digest);
      return Promise.resolve();
    },
    remove: (repository, digest) =>
      Promise.resolve(links.get(repository)?.delete(digest) ?? false),
  };
}

/**
 * Links as empty marker files, `<root>/.links/<repo>/.digests/<algorithm>/<encoded>`. The
 * digests sit under `.digests`, a component no repository name can have, so that no
 * repository's markers are another's (`victim/sha256/<hex>` would otherwise be a marker of
 * `victim`). Names must be checked (`checkRepositoryName`) before they get here.
 *
 * @param root The registry's directory.
 * @returns The links.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { markerLinks } from "./blob_links.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const root = await Deno.makeTempDir();
 * const links = markerLinks(root);
 * await links.add("team/app", digestOf("x"));
 * assert.ok(await links.has("team/app", digestOf("x")));
 * assert.ok(await links.remove("team/app", digestOf("x")));
 * assert.ok(!(await links.has("team/app", digestOf("x"))));
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export function markerLinks(root: string): BlobLinks {
  const path = (repository: string, digest: string) => {
    const { algorithm, encoded } = parseDigest(digest);
    return join(
      root,
      ".links",
      ...repository.split("/"),
      ".digests",
      algorithm,
      encoded,
    );
  };
  return {
    async has(repository, digest) {
      return (await statOrUndefined(path(repository, digest))) !== undefined;
    },
    async add(repository, digest) {
      const marker = path(repository, digest);
      await Deno.mkdir(join(marker, ".."), { recursive: true });
      await Deno.writeFile(marker, new Uint8Array());
    },
    async remove(repository, digest) {
      try {
        await Deno.remove(path(repository, digest));
        return true;
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return false;
        throw error;
      }
    },
  };
}
