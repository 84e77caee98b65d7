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
export async function listTags(
  ref: ImageReference,
  options: ListTagsOptions = {},
): Promise<string[]> {
  const transport = options.transport ?? defaultOpener();
  const maxPages = options.maxPages ?? 10_000;
  const tags: string[] = [];
  let url: string | undefined = tagsUrl(ref, { n: options.pageSize });
  for (let page = 0; url !== undefined; page++) {
    const request = new Request(url, { signal: options.signal });
    if (page >= maxPages) {
      throw new RegistryError({
        method: "GET",
        url,
        status: 200,
        reason: `more than ${maxPages} pages of tags`,
      });
    }
    // A body cut off in transit is read again (the opener retries only whole responses).
    const { response, body } = await retryTransient(async () => {
      const response = await ensureStatus(
        request,
        await transport(request.clone()),
        200,
      );
      return { response, body: await response.json() as { tags?: unknown } };
    }, options);
    if (
      body.tags !== null && body.tags !== undefined && !Array.isArray(body.tags)
    ) {
      throw new RegistryError({
        method: "GET",
        url,
        status: response.status,
        reason: "the tag list has no tags array",
      });
    }
    tags.push(...((body.tags as string[] | null) ?? []));
    const next = nextLink(response.headers.get("link"));
    url = next === undefined ? undefined : resolveRegistryUrl(next, {
      from: response.url || url,
      base: endpoint(ref),
      header: "Link",
    }).href;
  }
  return tags;
}
