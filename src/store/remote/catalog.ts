/**
 * The registry's catalog, `GET /v2/_catalog`, with `n` and `Link` pagination (as the tag
 * list). Registries often restrict it: distribution asks for the token scope
 * `registry:catalog:*`, Docker Hub and others refuse it.
 *
 * @module
 */
import { endpoint, type ImageReference } from "../../oci/reference.ts";
import { resolveRegistryUrl } from "../../transport/redirects.ts";
import { ensureStatus, RegistryError } from "../../transport/errors.ts";
import { retryTransient } from "../../transport/transient.ts";
import { defaultOpener } from "../../transport/opener.ts";
import type { ListTagsOptions } from "./tags.ts";
import { nextLink } from "./tags.ts";

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
export async function listRepositories(
  registry: Pick<ImageReference, "registry" | "scheme">,
  options: ListRepositoriesOptions = {},
): Promise<string[]> {
  const ref: ImageReference = { ...registry, repository: "" };
  const transport = options.transport ?? defaultOpener();
  const maxPages = options.maxPages ?? 10_000;
  const names: string[] = [];
  const first = new URL(endpoint(ref, "_catalog"));
  if (options.pageSize !== undefined) {
    if (!Number.isSafeInteger(options.pageSize) || options.pageSize < 1) {
      throw new RangeError(
        `Cannot list the repositories of ${registry.registry}: the page size must be a positive integer, got ${options.pageSize}`,
      );
    }
    first.searchParams.set("n", String(options.pageSize));
  }
  let url: string | undefined = first.href;
  for (let page = 0; url !== undefined; page++) {
    if (page >= maxPages) {
      throw new RegistryError({
        method: "GET",
        url,
        status: 200,
        reason: `more than ${maxPages} pages of repositories`,
      });
    }
    const request = new Request(url, { signal: options.signal });
    const { response, body } = await retryTransient(async () => {
      const response = await ensureStatus(
        request,
        await transport(request.clone()),
        200,
      );
      return {
        response,
        body: await response.json() as { repositories?: unknown },
      };
    }, options);
    const list = body.repositories ?? [];
    if (!Array.isArray(list) || list.some((n) => typeof n !== "string")) {
      throw new RegistryError({
        method: "GET",
        url,
        status: response.status,
        reason: "the catalog has no repositories array of names",
      });
    }
    names.push(...list);
    const next = nextLink(response.headers.get("link"));
    url = next === undefined ? undefined : resolveRegistryUrl(next, {
      from: response.url || url,
      base: endpoint(ref),
      header: "Link",
    }).href;
  }
  return names;
}
