/**
 * Blob uploads: `POST …/blobs/uploads/` (a session, a single-request upload with `?digest=`,
 * or a cross-repository mount) and `GET`, `PATCH`, `PUT`, `DELETE` of a session. Bytes are
 * hashed as they arrive; a blob is stored only once its digest matched.
 *
 * @module
 */
import { parseDigest } from "../oci/digest.ts";
import {
  declaredLength,
  isValidDigest,
  isValidName,
  type RegistryContext,
} from "./context.ts";
import {
  API_HEADERS,
  digestInvalid,
  digestMismatch,
  methodNotAllowed,
  RegistryHttpError,
  unsupported,
  uploadUnknown,
} from "./errors.ts";
import type { BlobUpload } from "../store/store.ts";
import { blobDescriptor } from "./repositories.ts";

/** A cross-repository mount: the blob, and the repository it is read from. */
export interface Mount {
  /** The blob's digest. */
  readonly digest: string;
  /** The repository it is read from. */
  readonly from: string;
}

/**
 * The mount a POST to `…/blobs/uploads/` asks for: exactly one valid `mount` digest and one
 * valid `from` repository. Anything else (no `from`, an empty, invalid or repeated one) is no
 * mount, and an ordinary upload starts, as distribution does: a mount never searches the
 * registry for the blob.
 */
export function mountOf(url: URL): Mount | undefined {
  const digests = url.searchParams.getAll("mount");
  const sources = url.searchParams.getAll("from");
  if (digests.length !== 1 || sources.length !== 1) return undefined;
  const [digest, from] = [digests[0], sources[0]];
  return isValidDigest(digest) && isValidName(from)
    ? { digest, from }
    : undefined;
}

/** `POST …/blobs/uploads/`: a mount, a single-request upload, or a new session. */
export async function serveUploads(
  context: RegistryContext,
  request: Request,
  url: URL,
  name: string,
  client: string,
): Promise<Response> {
  if (request.method !== "POST") throw methodNotAllowed(request.method);
  const repository = context.repositories.get(name);
  if (url.searchParams.has("mount")) {
    // Only from the named source (whose pull right `needsOf` made the caller show).
    const mount = mountOf(url);
    if (mount !== undefined) {
      const from = context.repositories.get(mount.from);
      const size = await from.blobSize(mount.digest);
      if (
        size !== undefined &&
        await repository.mount(blobDescriptor(mount.digest, size), from)
      ) {
        await request.body?.cancel();
        return blobCreated(context, request, name, mount.digest);
      }
    }
    return await startSession(context, request, name, client);
  }
  const digest = url.searchParams.get("digest");
  if (digest !== null && context.singlePost) {
    const session = await repository.startUpload();
    try {
      if (request.body) {
        await session.append(request.body, declaredLength(request));
      }
    } catch (error) {
      // No one can resume a single-request upload: drop its bytes.
      await session.cancel();
      throw error;
    }
    return await finishUpload(context, request, name, session, digest);
  }
  return await startSession(context, request, name, client);
}

/** A request to an upload session `…/blobs/uploads/<id>`, one at a time per session. */
export async function serveUpload(
  context: RegistryContext,
  request: Request,
  url: URL,
  name: string,
  id: string,
): Promise<Response> {
  const upload = context.uploads.get(id, name);
  if (upload === undefined) throw uploadUnknown(id);
  return await context.uploads.use(
    upload,
    () => uploadRequest(context, request, url, name, id, upload.session),
  );
}

/** One request to a known upload session: status, cancel, a chunk, or the final PUT. */
async function uploadRequest(
  context: RegistryContext,
  request: Request,
  url: URL,
  name: string,
  id: string,
  session: BlobUpload,
): Promise<Response> {
  const statusHeaders = () => ({
    ...API_HEADERS,
    location: context.location(request, `/v2/${name}/blobs/uploads/${id}`),
    "docker-upload-uuid": id,
    range: `0-${Math.max(0, session.size - 1)}`,
    "content-length": "0",
  });
  switch (request.method) {
    case "GET":
      return new Response(null, { status: 204, headers: statusHeaders() });
    case "DELETE":
      context.uploads.remove(id);
      await session.cancel();
      return new Response(null, { status: 204, headers: API_HEADERS });
    case "PATCH": {
      const range = request.headers.get("content-range");
      if (range !== null) {
        const match = /^(?:bytes[ =])?(\d+)-(\d+)$/.exec(range.trim());
        if (
          !match || Number(match[1]) !== session.size ||
          Number(match[2]) < Number(match[1])
        ) {
          throw new RegistryHttpError(
            416,
            "BLOB_UPLOAD_INVALID",
            `Content-Range "${range}" does not continue at ${session.size}`,
            { headers: statusHeaders() },
          );
        }
      }
      if (request.body) {
        await session.append(request.body, declaredLength(request));
      }
      return new Response(null, { status: 202, headers: statusHeaders() });
    }
    case "PUT": {
      const digest = url.searchParams.get("digest");
      if (digest === null) {
        throw new RegistryHttpError(
          400,
          "DIGEST_INVALID",
          "the digest query parameter is missing",
        );
      }
      if (request.body) {
        await session.append(request.body, declaredLength(request));
      }
      context.uploads.remove(id);
      return await finishUpload(context, request, name, session, digest);
    }
    default:
      throw methodNotAllowed(request.method);
  }
}

/** Opens an upload session: 202 with its `Location`. */
async function startSession(
  context: RegistryContext,
  request: Request,
  name: string,
  client: string,
): Promise<Response> {
  await request.body?.cancel();
  await context.uploads.sweep();
  const id = await context.uploads.open(
    name,
    client,
    () => context.repositories.get(name).startUpload(),
  );
  return new Response(null, {
    status: 202,
    headers: {
      ...API_HEADERS,
      location: context.location(request, `/v2/${name}/blobs/uploads/${id}`),
      "docker-upload-uuid": id,
      range: "0-0",
      "content-length": "0",
    },
  });
}

/** Stores a session's bytes as a blob when they match `digest`; drops them when they do not. */
async function finishUpload(
  context: RegistryContext,
  request: Request,
  name: string,
  session: BlobUpload,
  digest: string,
): Promise<Response> {
  if (!isValidDigest(digest)) {
    await session.cancel();
    throw digestInvalid(digest);
  }
  if (parseDigest(digest).algorithm !== "sha256") {
    await session.cancel();
    throw unsupported("only sha256 digests are supported");
  }
  const actual = session.digest();
  if (actual !== digest) {
    await session.cancel();
    throw digestMismatch(
      "provided digest did not match uploaded content",
      { expected: digest, actual },
    );
  }
  try {
    await session.commit(digest);
  } catch (error) {
    // The session is no longer reachable: drop its bytes.
    await session.cancel();
    throw error;
  }
  return blobCreated(context, request, name, digest);
}

/** 201: the blob is in the repository (uploaded or mounted). */
function blobCreated(
  context: RegistryContext,
  request: Request,
  name: string,
  digest: string,
): Response {
  return new Response(null, {
    status: 201,
    headers: {
      ...API_HEADERS,
      location: context.location(request, `/v2/${name}/blobs/${digest}`),
      "docker-content-digest": digest,
      "content-length": "0",
    },
  });
}
