/**
 * The registry's catalog, `GET /v2/_catalog`, with `n` and `Link` pagination (as the tag
 * list). Registries often restrict it: distribution asks for the token scope
 * `registry:catalog:*`, Docker Hub and others refuse it.
 *
 * @module
 */
import { endpoint, type ImageReference } from "../../oci/reference.ts";
import { collectPages, type ListTagsOptions } from "./tags.ts";

/** Options of {@linkcode listRepositories}: those of the tag list. */
export type ListRepositoriesOptions = ListTagsOptions;

/**
 * Lists every repository of a registry, following `Link` pagination to the end (relative
 * links resolve against the registry's `/v2/`; only `http:`/`https:` ones are followed).
 *
 * @param registry The registry (a reference's `registry` and `scheme`; its repository is
 *   ignored).
 * @param options Page size, transport and signal.
 * @returns The repositories, in the registry's order.
 * @throws {RegistryError} When the registry refuses, or the pages never end.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listRepositories } from "./catalog.ts";
 * import { createRegistry } from "../../server/mod.ts";
 * const transport = createRegistry();
 * assert.deepEqual(await listRepositories({ registry: "127.0.0.1:5000", scheme: "http" }, { transport }), []);
 * ```
 */
export function listRepositories(
  registry: Pick<ImageReference, "registry" | "scheme">,
  options: ListRepositoriesOptions = {},
): Promise<string[]> {
  const ref: ImageReference = { ...registry, repository: "" };
  const first = new URL(endpoint(ref, "_catalog"));
  if (options.pageSize !== undefined) {
    if (!Number.isSafeInteger(options.pageSize) || options.pageSize < 1) {
      throw new RangeError(
        `Cannot list the repositories of ${registry.registry}: the page size must be a positive integer, got ${options.pageSize}`,
      );
    }
    first.searchParams.set("n", String(options.pageSize));
  }
  return collectPages(ref, first.href, {
    ...options,
    what: "repositories",
    itemsOf: (body) => {
      const list = body.repositories ?? [];
      return Array.isArray(list) && list.every((n) => typeof n === "string")
        ? list
        : undefined;
    },
    invalid: "the catalog has no repositories array of names",
  });
}
