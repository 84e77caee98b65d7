/**
 * The size of a blob on a registry, by `HEAD …/blobs/<digest>` (its `Content-Length`), for
 * reading a blob known only by digest.
 *
 * @module
 */
import { parseDigest } from "../../oci/digest.ts";
import { blobUrl, type ImageReference } from "../../oci/reference.ts";
import { ensureStatus, RegistryError } from "../../transport/errors.ts";
import { defaultOpener } from "../../transport/opener.ts";
import type { RegistryOptions } from "./blobs.ts";

/**
 * Asks a repository for a blob's size.
 *
 * @param ref The repository.
 * @param digest The blob's digest.
 * @param options Transport and signal.
 * @returns The size, or undefined when the repository has no such blob (404).
 * @throws {RegistryError} On another status, or an answer without a `Content-Length`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { blobSize } from "./blob_size.ts";
 * import { parseReference } from "../../oci/reference.ts";
 * import { createRegistry } from "../../server/mod.ts";
 * const size = await blobSize(parseReference("127.0.0.1:5000/app"), `sha256:${"0".repeat(64)}`, { transport: createRegistry() });
 * assert.equal(size, undefined);
 * ```
 */
export async function blobSize(
  ref: ImageReference,
  digest: string,
  options: RegistryOptions = {},
): Promise<number | undefined> {
  parseDigest(digest);
  const transport = options.transport ?? defaultOpener();
  const request = new Request(blobUrl(ref, digest), {
    method: "HEAD",
    signal: options.signal,
  });
  const response = await transport(request);
  await response.body?.cancel();
  if (response.status === 404) return undefined;
  await ensureStatus(request, response, 200);
  const length = response.headers.get("content-length");
  if (length === null || !/^\d+$/.test(length)) {
    throw new RegistryError({
      method: "HEAD",
      url: request.url,
      status: response.status,
      reason: "the answer has no Content-Length",
    });
  }
  return Number(length);
}
