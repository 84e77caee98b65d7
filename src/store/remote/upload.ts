/**
 * Writes to a registry: a blob's upload session (POST then PUT, a single POST, or a mount) and a
 * manifest's PUT. The remote store's private implementation: use `remoteStore(ref).push`.
 *
 * @module
 */
import { tapBytes } from "../../io/bytes.ts";
import { parseDigest } from "../../oci/digest.ts";
import type { Descriptor } from "../../oci/manifest.ts";
import {
  endpoint,
  type ImageReference,
  manifestUrl,
  uploadsUrl,
} from "../../oci/reference.ts";
import { ensureStatus, RegistryError } from "../../transport/errors.ts";
import { resolveRegistryUrl } from "../../transport/redirects.ts";
import { defaultOpener } from "../../transport/opener.ts";
import {
  type BlobSource,
  createRequest,
  type Transport,
} from "../../transport/request_body.ts";
import type { RegistryOptions } from "./blobs.ts";
import { formatTransfer, type ProgressOptions } from "./progress.ts";

/** Options of {@linkcode uploadBlob}. */
export interface UploadBlobOptions extends RegistryOptions, ProgressOptions {
  /**
   * Blobs up to this size go in a single POST `?digest=`; registries that do not support it
   * answer 202 and get the PUT. 0 turns it off.
   * @default {0}
   */
  readonly smallBlobSize?: number;
  /** Another repository of the same registry that has the blob: mount it from there. */
  readonly mountFrom?: string;
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
 * Uploads a blob in one upload session, as the remote store's `push` and `mount` do (whether
 * the registry has it already, and starting again after a failure, are the copy's business).
 * Monolithic: POST `/blobs/uploads/`, then one PUT to the returned `Location` (relative or
 * absolute, `http:`/`https:` only) with `digest=` and an exact `Content-Length`; no PATCH
 * chunks. Optionally a single POST for small blobs, or a mount from another repository of the
 * same registry (201: no bytes sent; 202: the upload goes on). The registry's
 * `Docker-Content-Digest` is checked when it sends one. An abort of `options.signal` stops the
 * upload at once (the body stops being read), cancels the upload session with a best-effort
 * `DELETE` of its location (half a second at most), and rejects with the signal's reason.
 *
 * @param ref The target repository.
 * @param source The bytes, re-openable (the opener replays them after a login or a redirect).
 * @param digest The blob's digest, which the registry verifies.
 * @param options Transport, signal, single-POST size, mount source, progress.
 * @returns True when bytes were sent, false when the blob was mounted.
 * @throws {RegistryError} When the registry refuses the upload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { uploadBlob } from "./upload.ts";
 * import { createRegistry } from "../../server/mod.ts";
 * import { parseReference } from "../../oci/reference.ts";
 * import { bytesSource } from "../../transport/request_body.ts";
 * import { digestOf } from "../../oci/digest.ts";
 * const ref = parseReference("127.0.0.1:5000/app");
 * assert.ok(await uploadBlob(ref, bytesSource("x"), digestOf("x"), { transport: createRegistry() }));
 * ```
 */
export async function uploadBlob(
  ref: ImageReference,
  source: BlobSource,
  digest: string,
  options: UploadBlobOptions = {},
): Promise<boolean> {
  parseDigest(digest);
  const transport = options.transport ?? defaultOpener();
  return await uploadOnce(ref, source, digest, options, transport);
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

/**
 * PUTs a manifest's exact bytes under a tag or its digest, with `Content-Type` = its media
 * type, and checks the `Docker-Content-Digest` the registry answers.
 *
 * @param ref The repository.
 * @param bytes The manifest's bytes, as they will be stored.
 * @param descriptor Their media type and digest.
 * @param reference The tag, or the digest.
 * @param options Transport and signal.
 * @throws {RegistryError} When the registry refuses it or stores other bytes.
 *
 * @example
 * ```ts
 * import { putManifest } from "./upload.ts";
 * import { createRegistry } from "../../server/mod.ts";
 * import { parseReference } from "../../oci/reference.ts";
 * import { digestOf } from "../../oci/digest.ts";
 * const bytes = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] }));
 * const descriptor = { mediaType: "application/vnd.oci.image.index.v1+json", digest: digestOf(bytes), size: bytes.byteLength };
 * await putManifest(parseReference("127.0.0.1:5000/app"), bytes, descriptor, "v1", { transport: createRegistry() });
 * ```
 */
export async function putManifest(
  ref: ImageReference,
  bytes: Uint8Array,
  descriptor: Descriptor,
  reference: string,
  options: RegistryOptions = {},
): Promise<void> {
  const transport = options.transport ?? defaultOpener();
  const request = createRequest(manifestUrl(ref, reference), {
    method: "PUT",
    headers: { "content-type": descriptor.mediaType },
    body: bytes,
    signal: options.signal,
  });
  const response = await ensureStatus(request, await transport(request), 201);
  await response.body?.cancel();
  const returned = response.headers.get("docker-content-digest");
  if (returned !== null && returned !== descriptor.digest) {
    throw new RegistryError({
      method: "PUT",
      url: request.url,
      status: response.status,
      reason:
        `the registry stored the manifest as ${returned}, but ${descriptor.digest} was sent`,
    });
  }
}
