/**
 * Tag listing with `Link` pagination.
 *
 * @module
 */
import { endpoint, type ImageReference, tagsUrl } from "../../oci/reference.ts";
import { resolveRegistryUrl } from "../../transport/redirects.ts";
import { ensureStatus, RegistryError } from "../../transport/errors.ts";
import { retryTransient } from "../../transport/transient.ts";
import { defaultOpener } from "../../transport/opener.ts";
import type { RegistryOptions } from "./blobs.ts";

/** Options of {@linkcode listTags}. */
export interface ListTagsOptions extends RegistryOptions {
  /** Page size asked for (`n`); registries may ignore it. */
  readonly pageSize?: number;
  /** Bound on pages followed, against a registry whose `Link` never ends. @default {10000} */
  readonly maxPages?: number;
  /**
   * Reads of a page in all when its body is cut off (or a transient status outlasts the
   * opener's retries).
   * @default {5}
   */
  readonly attempts?: number;
  /** Told before a page whose body was cut off is fetched again. */
  readonly onRetry?: (error: unknown, attempt: number) => void;
}

/**
 * Reads the `rel="next"` target of a `Link` header.
 *
 * @param header The `Link` header value.
 * @returns The target, or undefined when there is no next page.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nextLink } from "./tags.ts";
 * assert.equal(nextLink('</v2/app/tags/list?n=2&last=b>; rel="next"'), "/v2/app/tags/list?n=2&last=b");
 * assert.equal(nextLink(null), undefined);
 * ```
 */
export function nextLink(header: string | null): string | undefined {
  if (header === null) return undefined;
  for (const part of header.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (match && /(?:^|;)\s*rel="?next"?\s*(?:;|$)/i.test(match[2])) {
      return match[1];
    }
  }
  return undefined;
}

/**
 * Lists every tag of a repository, following `Link` pagination to the end (relative links
 * resolve against the registry's `/v2/`; only `http:`/`https:` ones are followed).
 *
 * @param ref The repository.
 * @param options Page size, transport and signal.
 * @returns The tags, in the registry's order.
 * @throws {RegistryError} When the registry refuses, or the pages never end.
 * @throws {UnsafeUrlError} When a `Link` leads elsewhere than `http:`/`https:`, or down from
 * `https:` to `http:` off loopback.
 *
 * @example
 * ```ts ignore
 * const tags = await listTags(parseReference("127.0.0.1:5000/app"));
 * ```
 */
export function listTags(
  ref: ImageReference,
  options: ListTagsOptions = {},
): Promise<string[]> {
  return collectPages(ref, tagsUrl(ref, { n: options.pageSize }), {
    ...options,
    what: "tags",
    itemsOf: (body) => {
      const tags = body.tags;
      if (tags === null || tags === undefined) return [];
      return Array.isArray(tags) ? tags : undefined;
    },
    invalid: "the tag list has no tags array",
  });
}

/** How {@linkcode collectPages} reads a list's pages. */
export interface CollectPagesOptions extends ListTagsOptions {
  /** What the pages list, for the "too many pages" error (`tags`, `repositories`). */
  readonly what: string;
  /** The page's items, or undefined when the body is not a list of the expected shape. */
  readonly itemsOf: (body: Record<string, unknown>) => string[] | undefined;
  /** The error's reason when `itemsOf` answers undefined. */
  readonly invalid: string;
}

/**
 * Follows a paginated list of names (the tag list, the catalog) from its first page to the
 * end: each page read (its body read again when cut off in transit; the opener retries only
 * whole responses), its items collected, its `Link` `rel="next"` followed (relative links
 * resolve against the registry's `/v2/`; only `http:`/`https:` ones are followed), at most
 * `maxPages` pages.
 *
 * @param ref The registry (and repository) whose `/v2/` relative links resolve against.
 * @param first The first page's URL.
 * @param options The list's reader, page bound, transport, signal and retries.
 * @returns Every page's items, in order.
 * @throws {RegistryError} When a page is refused or malformed, or the pages never end.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { collectPages } from "./tags.ts";
 * const pages = ['{"names":["a"]}', '{"names":["b"]}'];
 * const transport = (request: Request) => {
 *   const page = new URL(request.url).searchParams.get("page") ?? "0";
 *   const headers = page === "0" ? { link: '</v2/list?page=1>; rel="next"' } : undefined;
 *   return Promise.resolve(new Response(pages[Number(page)], { headers }));
 * };
 * const names = await collectPages(
 *   { registry: "127.0.0.1:5000", repository: "", scheme: "http" },
 *   "http://127.0.0.1:5000/v2/list",
 *   { transport, what: "names", itemsOf: (body) => body.names as string[], invalid: "no names" },
 * );
 * assert.deepEqual(names, ["a", "b"]);
 * ```
 */
export async function collectPages(
  ref: ImageReference,
  first: string,
  options: CollectPagesOptions,
): Promise<string[]> {
  const transport = options.transport ?? defaultOpener();
  const maxPages = options.maxPages ?? 10_000;
  const items: string[] = [];
  let url: string | undefined = first;
  for (let page = 0; url !== undefined; page++) {
    if (page >= maxPages) {
      throw new RegistryError({
        method: "GET",
        url,
        status: 200,
        reason: `more than ${maxPages} pages of ${options.what}`,
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
        body: await response.json() as Record<string, unknown>,
      };
    }, options);
    // A body that is not an object (`null`, a number) has no list: malformed, not empty.
    const found = typeof body === "object" && body !== null
      ? options.itemsOf(body)
      : undefined;
    if (found === undefined) {
      throw new RegistryError({
        method: "GET",
        url,
        status: response.status,
        reason: options.invalid,
      });
    }
    items.push(...found);
    const next = nextLink(response.headers.get("link"));
    url = next === undefined ? undefined : resolveRegistryUrl(next, {
      from: response.url || url,
      base: endpoint(ref),
      header: "Link",
    }).href;
  }
  return items;
}
