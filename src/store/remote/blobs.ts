/**
 * Blob reads on a registry: exists, and verified download. (Uploads are the remote store's,
 * in `upload.ts`.)
 *
 * @module
 */
import { parseDigest, verifyStream } from "../../oci/digest.ts";
import { blobUrl, type ImageReference } from "../../oci/reference.ts";
import { ensureStatus } from "../../transport/errors.ts";
import { defaultOpener } from "../../transport/opener.ts";
import type { Transport } from "../../transport/request_body.ts";
import { formatTransfer, type ProgressOptions } from "./progress.ts";

/** Options every registry operation takes. */
export interface RegistryOptions {
  /**
   * The opener (fetch + auth + retry), or any function with the shape of `fetch`.
   * @default {defaultOpener()}
   */
  readonly transport?: Transport;
  /**
   * Cancels the operation: it rejects with the signal's reason as soon as it aborts, the
   * connection of a transfer in progress is closed, and nothing more is read or sent.
   */
  readonly signal?: AbortSignal;
}

/**
 * Tells whether the repository has a blob: HEAD, 200 is true, 404 is false.
 *
 * @param ref The repository (tag and digest are ignored).
 * @param digest The blob's digest.
 * @param options Transport and signal.
 * @returns Whether the blob exists.
 * @throws {RegistryError} On any other status.
 *
 * @example
 * ```ts ignore
 * const present = await blobExists(parseReference("127.0.0.1:5000/app"), "sha256:…");
 * ```
 */
export async function blobExists(
  ref: ImageReference,
  digest: string,
  options: RegistryOptions = {},
): Promise<boolean> {
  parseDigest(digest);
  const transport = options.transport ?? defaultOpener();
  const request = new Request(blobUrl(ref, digest), {
    method: "HEAD",
    signal: options.signal,
  });
  const response = await transport(request);
  if (response.status === 404) {
    await response.body?.cancel();
    return false;
  }
  await ensureStatus(request, response, 200);
  await response.body?.cancel();
  return true;
}

/** Options of {@linkcode fetchBlob}. */
export interface FetchBlobOptions extends RegistryOptions, ProgressOptions {
  /** The blob's size from its descriptor: more or fewer bytes are an error. */
  readonly size?: number;
}

/**
 * Downloads a blob, following redirects, as a stream that is hashed while it flows: the stream
 * errors with a `DigestMismatchError` when the bytes do not match the digest (or the size), so a
 * consumer writing them to disk can discard them. An abort of `options.signal`, also after this
 * returned, cancels the response body (the connection closes) and errors the stream with the
 * signal's reason.
 *
 * @param ref The repository.
 * @param digest The blob's digest.
 * @param options Transport, signal, expected size, progress.
 * @returns The verified byte stream.
 * @throws {RegistryError} When the registry does not serve the blob.
 *
 * @example
 * ```ts ignore
 * const stream = await fetchBlob(parseReference("127.0.0.1:5000/app"), digest, { size });
 * await stream.pipeTo((await Deno.create("blob")).writable);
 * ```
 */
export async function fetchBlob(
  ref: ImageReference,
  digest: string,
  options: FetchBlobOptions = {},
): Promise<ReadableStream<Uint8Array>> {
  parseDigest(digest);
  const transport = options.transport ?? defaultOpener();
  const url = blobUrl(ref, digest);
  const request = new Request(url, { signal: options.signal });
  const response = await ensureStatus(request, await transport(request), 200);
  const length = response.headers.get("content-length");
  const total = options.size ??
    (length !== null && /^\d+$/.test(length) ? Number(length) : undefined);
  const started = performance.now();
  // One stage: checked, counted and logged as 1 MiB chunks pass (each extra stream hop costs).
  const { onProgress, log } = options;
  return verifyStream(response.body ?? new Response("").body!, digest, {
    size: options.size,
    context: url,
    signal: options.signal,
    onProgress: onProgress && ((done) => onProgress({ digest, done, total })),
    onEnd: log &&
      ((result) =>
        log(
          formatTransfer(
            "Downloaded",
            digest,
            result.size,
            (performance.now() - started) / 1000,
          ),
        )),
  });
}
