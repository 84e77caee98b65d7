/**
 * Blob operations on a registry: exists, upload (monolithic, or mounted from another
 * repository), and verified download.
 *
 * @module
 */
import { tapBytes } from "../../io/bytes.ts";
import { parseDigest, verifyStream } from "../../oci/digest.ts";
import {
  blobUrl,
  endpoint,
  type ImageReference,
  uploadsUrl,
} from "../../oci/reference.ts";
import { ensureStatus, RegistryError } from "../../transport/errors.ts";
import { resolveRegistryUrl } from "../../transport/redirects.ts";
import { defaultOpener } from "../../transport/opener.ts";
import { retryTransient } from "../../transport/transient.ts";
import {
  type BlobSource,
  bytesSource,
  createRequest,
  fileSource,
  type Transport,
} from "../../transport/request_body.ts";
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

/** The bytes of a blob to upload: a file path, bytes in memory, or a re-openable source. */
export type BlobInput = string | Uint8Array | BlobSource;

/** Options of {@linkcode uploadBlob}. */
export interface UploadBlobOptions extends RegistryOptions, ProgressOptions {
  /**
   * Upload even when the registry already has the blob (no HEAD first).
   * @default {false}
   */
  readonly force?: boolean;
  /**
   * Blobs up to this size go in a single POST `?digest=`; registries that do not support it
   * answer 202 and get the PUT. 0 turns it off.
   * @default {0}
   */
  readonly smallBlobSize?: number;
  /** Another repository of the same registry that has the blob: mount it from there. */
  readonly mountFrom?: string;
  /**
   * Uploads in all, each in a new upload session, when one fails in a way another may not
   * (connection lost, session lost, bytes damaged on the way, 5xx after the opener's retries).
   * Before starting again, a HEAD checks whether the failed attempt landed after all.
   * @default {5}
   */
  readonly attempts?: number;
  /** Told before an upload starts again in a new session. */
  readonly onRetry?: (error: unknown, attempt: number) => void;
}

async function toSource(input: BlobInput): Promise<BlobSource> {
  if (typeof input === "string") return await fileSource(input);
  if (input instanceof Uint8Array) return bytesSource(input);
  return input;
}

/**
 * The upload session's URL from a `Location` header (POST and PATCH answers), resolved against
 * the registry's `/v2/`; it may lead only to `http:`/`https:` (see `resolveRegistryUrl`).
 */
function uploadLocation(
  ref: ImageReference,
  request: Request,
  response: Response,
): string | undefined {
  const location = response.headers.get("location");
  if (location === null) return undefined;
  return resolveRegistryUrl(location, {
    from: response.url || request.url,
    base: endpoint(ref),
    header: "upload Location",
  }).href;
}

/** Appends `digest=` to an upload location, leaving its own query (e.g. `_state`) as it is. */
function withDigestParam(location: string, digest: string): string {
  const separator = location.includes("?") ? "&" : "?";
  return `${location}${separator}digest=${encodeURIComponent(digest)}`;
}

/**
 * Uploads a blob unless the repository already has it. Monolithic: POST `/blobs/uploads/`, then
 * one PUT to the returned `Location` (relative or absolute, `http:`/`https:` only) with `digest=` and an exact
 * `Content-Length`; no PATCH chunks. Optionally a single POST for small blobs, or a mount from
 * another repository of the same registry (201: no bytes sent; 202: the upload goes on).
 * The registry's `Docker-Content-Digest` is checked when it sends one. An abort of
 * `options.signal` stops the upload at once (the body stops being read), cancels the upload
 * session with a best-effort `DELETE` of its location (half a second at most), and rejects
 * with the signal's reason.
 *
 * @param ref The target repository.
 * @param input The bytes: a file path, a `Uint8Array`, or a `BlobSource` (re-openable, so a
 * retry can replay it; memory stays flat).
 * @param digest The blob's digest, which the registry verifies.
 * @param options Transport, signal, force, single-POST size, mount source, progress.
 * @returns True when bytes were sent, false when the blob existed or was mounted.
 * @throws {RegistryError} When the registry refuses the upload.
 *
 * @example
 * ```ts ignore
 * const sent = await uploadBlob(parseReference("127.0.0.1:5000/app"), "layer.tar.gz", digest);
 * ```
 */
export async function uploadBlob(
  ref: ImageReference,
  input: BlobInput,
  digest: string,
  options: UploadBlobOptions = {},
): Promise<boolean> {
  parseDigest(digest);
  const transport = options.transport ?? defaultOpener();
  if (!options.force && await blobExists(ref, digest, options)) return false;
  const source = await toSource(input);
  return await retryTransient(async (attempt) => {
    // The answer of a failed attempt may have been lost after the registry stored the blob.
    if (
      attempt > 1 && await blobExists(ref, digest, options).catch(() => false)
    ) {
      return true;
    }
    return await uploadOnce(ref, source, digest, options, transport);
  }, options);
}

/**
 * How long the `DELETE` that cancels an aborted upload session may take: it is a courtesy to
 * the registry (which drops idle sessions anyway), and must not hold up a Ctrl-C.
 */
const UPLOAD_CANCEL_TIMEOUT = 500;

/**
 * Cancels an upload session (`DELETE` of its location), best effort: within
 * {@linkcode UPLOAD_CANCEL_TIMEOUT}, and whatever the registry answers or fails with is ignored.
 */
async function cancelUpload(location: string, transport: Transport) {
  try {
    const request = new Request(location, {
      method: "DELETE",
      signal: AbortSignal.timeout(UPLOAD_CANCEL_TIMEOUT),
    });
    const response = await transport(request);
    await response.body?.cancel();
  } catch {
    // Best effort: the registry expires sessions nobody finishes.
  }
}

/**
 * One upload session, cancelled (`DELETE`) when the signal aborts after it started; an abort
 * rejects with the signal's reason.
 */
async function uploadOnce(
  ref: ImageReference,
  source: BlobSource,
  digest: string,
  options: UploadBlobOptions,
  transport: Transport,
): Promise<boolean> {
  const session: { location?: string } = {};
  try {
    return await uploadInSession(
      ref,
      source,
      digest,
      options,
      transport,
      session,
    );
  } catch (error) {
    const { signal } = options;
    if (!signal?.aborted) throw error;
    if (session.location !== undefined) {
      await cancelUpload(session.location, transport);
    }
    throw signal.reason;
  }
}

/** The requests of one upload: mount, single POST, or POST then PUT. */
async function uploadInSession(
  ref: ImageReference,
  source: BlobSource,
  digest: string,
  options: UploadBlobOptions,
  transport: Transport,
  session: { location?: string },
): Promise<boolean> {
  const { signal } = options;
  signal?.throwIfAborted();
  const started = performance.now();
  /** Sends one request of the upload; the answer's body is not needed. */
  const send = async (request: Request, ...expected: number[]) => {
    const response = await ensureStatus(
      request,
      await transport(request),
      ...expected,
    );
    await response.body?.cancel();
    return response;
  };
  const finish = (request: Request, response: Response): true => {
    checkDigestHeader(request, response, digest);
    options.log?.(
      formatTransfer(
        "Uploaded",
        digest,
        source.size,
        (performance.now() - started) / 1000,
      ),
    );
    return true;
  };

  let location: string | undefined;
  if (options.mountFrom !== undefined && options.mountFrom !== ref.repository) {
    const url = `${uploadsUrl(ref)}?mount=${digest}&from=${
      encodeURIComponent(options.mountFrom)
    }`;
    const request = createRequest(url, { method: "POST", body: "", signal });
    const response = await send(request, 201, 202);
    if (response.status === 201) {
      options.log?.(`Mounted ${digest} from ${options.mountFrom}`);
      return false;
    }
    location = session.location = uploadLocation(ref, request, response);
  }

  if (
    location === undefined && options.smallBlobSize &&
    source.size <= options.smallBlobSize
  ) {
    const request = createRequest(uploadsUrl(ref, digest), {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: uploadBody(source, digest, options),
      signal,
    });
    const response = await send(request, 201, 202);
    if (response.status === 201) return finish(request, response);
    location = session.location = uploadLocation(ref, request, response);
  }

  if (location === undefined) {
    const request = createRequest(uploadsUrl(ref), {
      method: "POST",
      body: "",
      signal,
    });
    const response = await send(request, 202);
    location = session.location = uploadLocation(ref, request, response);
    if (location === undefined) {
      throw new RegistryError({
        method: request.method,
        url: request.url,
        status: response.status,
        reason: "the registry started an upload but sent no Location header",
      });
    }
  }

  const request = createRequest(
    withDigestParam(location, digest),
    {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body: uploadBody(source, digest, options),
      signal,
    },
  );
  return finish(request, await send(request, 201));
}

/**
 * The body of an upload: the source, counted for progress, and stopped by the signal (the
 * source is cancelled and the body errors with the reason, whatever transport reads it).
 */
function uploadBody(
  source: BlobSource,
  digest: string,
  options: ProgressOptions & { signal?: AbortSignal },
): BlobSource {
  const { onProgress, signal } = options;
  if (!onProgress && !signal) return source;
  return {
    size: source.size,
    open: () => {
      // A byte stream still, so that the upload reads into its reused buffers.
      let done = 0;
      return tapBytes(source.open(), (bytes) => {
        done += bytes;
        onProgress?.({ digest, done, total: source.size });
      }, { signal });
    },
  };
}

function checkDigestHeader(
  request: Request,
  response: Response,
  digest: string,
): void {
  const returned = response.headers.get("docker-content-digest");
  if (returned !== null && returned !== digest) {
    throw new RegistryError({
      method: request.method,
      url: request.url,
      status: response.status,
      reason:
        `the registry stored the blob as ${returned}, but ${digest} was uploaded`,
    });
  }
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
