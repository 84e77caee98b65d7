/**
 * The embedded registry: a function of `Request` that implements the OCI distribution spec
 * v1.1 client endpoints, on top of a {@linkcode RegistryStorage}.
 *
 * @module
 */
import { parseDigest } from "../reference/digest.ts";
import { digestOf } from "../reference/digest.ts";
import { TAG_REGEXP } from "../reference/reference.ts";
import {
  isIndexMediaType,
  isManifestMediaType,
  OCI_INDEX_MEDIA_TYPE,
} from "../image/media_types.ts";
import type {
  Descriptor,
  ImageIndex,
  ImageManifest,
} from "../image/manifest.ts";
import { memoryStorage } from "./memory_storage.ts";
import { readAtMost } from "../bytes.ts";
import type { Need, RegistryAuth } from "./auth.ts";
import {
  checkRepositoryName,
  type RegistryStorage,
  RepositoryNameError,
  UploadLimitError,
  type UploadSession,
} from "./storage.ts";
import { UploadSessionLimitError, UploadSessions } from "./upload_sessions.ts";

/** Options of {@linkcode createRegistry}. Those marked "for testing" model real registries' quirks. */
export interface RegistryServerOptions {
  /**
   * Where content lives.
   * @default {memoryStorage()}
   */
  readonly storage?: RegistryStorage;
  /**
   * Whether DELETE of manifests, tags and blobs is allowed.
   * @default {true}
   */
  readonly delete?: boolean;
  /**
   * Whether a POST with `?digest=` completes an upload in one request; when false the body is
   * ignored and the answer is 202, as distribution 2.8 does (for testing).
   * @default {true}
   */
  readonly singlePost?: boolean;
  /**
   * Send absolute `Location` URLs instead of host-rooted paths (for testing).
   * @default {false}
   */
  readonly absoluteLocation?: boolean;
  /**
   * Answer blob GETs with a 307 to this function's URL, as registries backed by object storage
   * do (for testing that credentials are not forwarded).
   */
  readonly redirectBlob?: (
    repository: string,
    digest: string,
  ) => string | undefined;
  /**
   * Largest manifest accepted, in bytes.
   * @default {4194304}
   */
  readonly maxManifestSize?: number;
  /** Fault injection (for testing): a seeded share of requests fails on purpose. */
  readonly faults?: FaultOptions;
  /** Authentication (from `createRegistryAuth`); without it every request is allowed. */
  readonly auth?: RegistryAuth;
  /**
   * Milliseconds after which an upload session nobody has sent a request to is dropped with its
   * bytes, by a timer (swept at least every minute while sessions are open), so that clients
   * that go away leave nothing behind. Distribution purges by age (a week, daily); idleness
   * is stricter and lets a slow upload go on.
   * @default {3600000}
   */
  readonly uploadTimeout?: number;
  /**
   * Most unfinished upload sessions at once; more are refused with 429 `TOOMANYREQUESTS`.
   * @default {4096}
   */
  readonly maxUploads?: number;
  /**
   * Most unfinished upload sessions of one client (by remote address) at once; more are
   * refused with 429 `TOOMANYREQUESTS`.
   * @default {1024}
   */
  readonly maxUploadsPerClient?: number;
}

/** What `Deno.serve` tells a handler about a request's connection. */
export interface RequestInfo {
  /** The client's address. */
  readonly remoteAddr?: Deno.Addr;
}

/**
 * The registry as a function of `Request`, and `close()` to stop its upload-session timer and
 * drop unfinished sessions with their bytes.
 */
export interface RegistryHandler extends AsyncDisposable {
  /** Answers one request; `info` (from `Deno.serve`) tells who asks, for per-client limits. */
  (request: Request, info?: RequestInfo): Promise<Response>;
  /** Stops the sweep timer and drops every unfinished upload session. */
  close(): Promise<void>;
}

/** Faults the registry injects, for testing clients' retries and verification. */
export interface FaultOptions {
  /** Share of requests that fail, 0 to 1. */
  readonly rate: number;
  /** Seed of the pseudo-random choice, so that a run can be repeated. @default {1} */
  readonly seed?: number;
  /**
   * Which faults to pick from: `429` and `503` answer with `Retry-After: 0`, `reset` errors the
   * response body at once (the connection drops), `truncate` cuts a blob body in half, `flip`
   * changes one byte of a blob body.
   * @default {["429", "503", "reset", "truncate", "flip"]}
   */
  readonly kinds?: readonly ("429" | "503" | "reset" | "truncate" | "flip")[];
  /** Told about every fault injected. */
  readonly onFault?: (kind: string, request: Request) => void;
}

/** A small seeded generator (mulberry32): the same seed gives the same faults. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Wraps a handler so that a seeded share of its answers are faults. */
function withFaults(
  handler: (request: Request, info?: RequestInfo) => Promise<Response>,
  faults: FaultOptions,
): (request: Request, info?: RequestInfo) => Promise<Response> {
  const random = seededRandom(faults.seed ?? 1);
  const kinds = faults.kinds ?? ["429", "503", "reset", "truncate", "flip"];
  return async function faulty(
    request: Request,
    info?: RequestInfo,
  ): Promise<Response> {
    if (random() >= faults.rate) return await handler(request, info);
    const kind = kinds[Math.floor(random() * kinds.length)];
    const isBlobGet = request.method === "GET" &&
      /\/blobs\/sha256:/.test(new URL(request.url).pathname);
    if (kind === "429" || kind === "503") {
      faults.onFault?.(kind, request);
      await request.body?.cancel();
      return errorResponseWithRetry(Number(kind));
    }
    const response = await handler(request, info);
    if (response.body === null || (kind !== "reset" && !isBlobGet)) {
      return response;
    }
    faults.onFault?.(kind, request);
    const reader = response.body.getReader();
    let sent = 0;
    const length = Number(response.headers.get("content-length") ?? 0);
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (kind === "reset") {
          await reader.cancel();
          controller.error(new Error("injected connection reset"));
          return;
        }
        const { value, done } = await reader.read();
        if (done) return controller.close();
        if (kind === "truncate" && sent + value.byteLength >= length / 2) {
          controller.enqueue(
            value.subarray(0, Math.max(0, Math.floor(length / 2) - sent)),
          );
          await reader.cancel();
          controller.error(new Error("injected truncation"));
          return;
        }
        if (kind === "flip" && sent === 0 && value.byteLength > 0) {
          const copy = value.slice();
          copy[0] ^= 0xff;
          sent += value.byteLength;
          return controller.enqueue(copy);
        }
        sent += value.byteLength;
        controller.enqueue(value);
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, {
      status: response.status,
      headers: response.headers,
    });
  };
}

function errorResponseWithRetry(status: number): Response {
  const response = errorResponse(
    status,
    status === 429 ? "TOOMANYREQUESTS" : "UNAVAILABLE",
    "injected fault",
  );
  response.headers.set("retry-after", "0");
  return response;
}

const API_HEADERS = { "docker-distribution-api-version": "registry/2.0" };

/** The answer to a method an endpoint does not have. */
function methodNotAllowed(request: Request): Response {
  return errorResponse(
    405,
    "UNSUPPORTED",
    `${request.method} is not allowed here`,
  );
}

/** An OCI error answer: status, code, message. */
function errorResponse(
  status: number,
  code: string,
  message: string,
  detail?: unknown,
): Response {
  return Response.json(
    {
      errors: [{ code, message, ...(detail !== undefined ? { detail } : {}) }],
    },
    { status, headers: API_HEADERS },
  );
}

function validName(name: string): boolean {
  return nameProblem(name) === undefined;
}

/** Why a repository name is refused, or undefined when it is fine. */
function nameProblem(name: string): string | undefined {
  try {
    checkRepositoryName(name);
    return undefined;
  } catch (error) {
    if (error instanceof RepositoryNameError) return error.message;
    throw error;
  }
}

/** Who a request comes from, for per-client limits: its remote address. */
function clientOf(info: RequestInfo | undefined): string {
  const address = info?.remoteAddr;
  if (address === undefined) return "an in-process client";
  return "hostname" in address ? address.hostname : address.transport;
}

/** Whether an error is the process (EMFILE) or system (ENFILE) running out of descriptors. */
function isOutOfDescriptors(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "EMFILE" || code === "ENFILE" ||
    /\(os error (?:23|24)\)/.test(String((error as Error)?.message));
}

/** The length a request declares for its body, if it does. */
function declaredLength(request: Request): number | undefined {
  const text = request.headers.get("content-length");
  const length = text === null ? NaN : Number(text);
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}

/** The answer to an error that is not a bug: a full registry, a lack of descriptors. */
function limitResponse(error: unknown): Response | undefined {
  if (error instanceof UploadSessionLimitError) {
    return errorResponse(429, "TOOMANYREQUESTS", error.message);
  }
  if (error instanceof UploadLimitError) {
    return error.scope === "upload"
      ? errorResponse(413, "SIZE_INVALID", error.message)
      : errorResponse(429, "TOOMANYREQUESTS", error.message);
  }
  if (error instanceof RepositoryNameError) {
    return errorResponse(400, "NAME_INVALID", error.message);
  }
  if (isOutOfDescriptors(error)) {
    const response = errorResponse(
      503,
      "UNAVAILABLE",
      `the registry is out of file descriptors, try again: ${
        (error as Error).message
      }`,
    );
    response.headers.set("retry-after", "1");
    return response;
  }
  return undefined;
}

function validDigest(text: string): boolean {
  try {
    parseDigest(text);
    return true;
  } catch {
    return false;
  }
}

interface Route {
  name: string;
  kind: "blob" | "upload" | "uploads" | "manifest" | "tags" | "referrers";
  rest: string;
}

/** Splits `/v2/<name>/<kind>/<rest>`; the name may contain slashes. */
function route(path: string): Route | undefined {
  const patterns: [RegExp, Route["kind"]][] = [
    [/^\/v2\/(.+)\/blobs\/uploads\/?$/, "uploads"],
    [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, "upload"],
    [/^\/v2\/(.+)\/blobs\/([^/]+)$/, "blob"],
    [/^\/v2\/(.+)\/manifests\/([^/]+)$/, "manifest"],
    [/^\/v2\/(.+)\/tags\/list$/, "tags"],
    [/^\/v2\/(.+)\/referrers\/([^/]+)$/, "referrers"],
  ];
  for (const [pattern, kind] of patterns) {
    const match = pattern.exec(path);
    if (match) return { name: match[1], kind, rest: match[2] ?? "" };
  }
  return undefined;
}

/** The action a request's method takes on the repository of its path. */
function actionOf(method: string): Need["action"] {
  if (method === "GET" || method === "HEAD") return "pull";
  return method === "DELETE" ? "delete" : "push";
}

/** A cross-repository mount: the blob, and the repository it is read from. */
interface Mount {
  readonly digest: string;
  readonly from: string;
}

/**
 * The mount a POST to `…/blobs/uploads/` asks for: exactly one valid `mount` digest and one
 * valid `from` repository. Anything else (no `from`, an empty, invalid or repeated one) is no
 * mount, and an ordinary upload starts, as distribution does: a mount never searches the
 * registry for the blob.
 */
function mountOf(url: URL): Mount | undefined {
  const digests = url.searchParams.getAll("mount");
  const sources = url.searchParams.getAll("from");
  if (digests.length !== 1 || sources.length !== 1) return undefined;
  const [digest, from] = [digests[0], sources[0]];
  return validDigest(digest) && validName(from) ? { digest, from } : undefined;
}

/**
 * Every repository a request acts on, and how: the repository of its path, and the source of a
 * mount, which the request reads. Authorisation checks all of them, so that no endpoint reaches
 * a repository its caller may not.
 */
function needsOf(request: Request, url: URL): Need[] {
  const target = route(url.pathname);
  const action = actionOf(request.method);
  if (target === undefined) return [{ action }];
  const needs: Need[] = [{ repository: target.name, action }];
  const mount = target.kind === "uploads" && request.method === "POST"
    ? mountOf(url)
    : undefined;
  if (mount !== undefined) {
    needs.push({ repository: mount.from, action: "pull" });
  }
  return needs;
}

/**
 * Creates a registry handler: `(Request) => Promise<Response>`, for `Deno.serve` or for calling
 * in-process (no socket). Implements `GET /v2/`; pull (GET/HEAD of manifests and blobs, by tag
 * or digest, `Range` on blobs); push (POST, monolithic PUT, single POST `?digest=`, PATCH chunks
 * with `Content-Range`, upload status, cancel); cross-repository mount; tag listing with `n`,
 * `last` and `Link`; the referrers API with `artifactType` filtering and `OCI-Subject`; and
 * DELETE of manifests, tags and blobs. Uploads are verified while they stream; manifests are
 * checked for size, JSON, media type and that their blobs exist.
 *
 * @param options Storage, and behaviours for testing.
 * @returns The handler.
 *
 * @example Push and pull a blob in-process
 * ```ts
 * import assert from "node:assert/strict";
 * import { createRegistry } from "./handler.ts";
 * import { digestOf } from "../reference/digest.ts";
 * const registry = createRegistry();
 * const digest = digestOf("hello");
 * const put = await registry(new Request(`http://registry.test/v2/app/blobs/uploads/?digest=${digest}`, { method: "POST", body: "hello" }));
 * assert.equal(put.status, 201);
 * const get = await registry(new Request(`http://registry.test/v2/app/blobs/${digest}`));
 * assert.equal(await get.text(), "hello");
 * ```
 */
export function createRegistry(
  options: RegistryServerOptions = {},
): RegistryHandler {
  const storage = options.storage ?? memoryStorage();
  const allowDelete = options.delete ?? true;
  const singlePost = options.singlePost ?? true;
  const maxManifestSize = options.maxManifestSize ?? 4 * 1024 * 1024;
  const uploads = new UploadSessions({
    idleTimeout: options.uploadTimeout ?? 60 * 60 * 1000,
    maxSessions: options.maxUploads ?? 4096,
    maxSessionsPerClient: options.maxUploadsPerClient ?? 1024,
  });

  function location(request: Request, path: string): string {
    return options.absoluteLocation ? new URL(path, request.url).href : path;
  }

  async function startSession(
    request: Request,
    name: string,
    client: string,
  ): Promise<Response> {
    await request.body?.cancel();
    await uploads.sweep();
    const id = await uploads.open(name, client, () => storage.startUpload());
    return new Response(null, {
      status: 202,
      headers: {
        ...API_HEADERS,
        location: location(request, `/v2/${name}/blobs/uploads/${id}`),
        "docker-upload-uuid": id,
        range: "0-0",
        "content-length": "0",
      },
    });
  }

  async function finishUpload(
    request: Request,
    name: string,
    session: UploadSession,
    digest: string,
  ): Promise<Response> {
    if (!validDigest(digest)) {
      await session.cancel();
      return errorResponse(
        400,
        "DIGEST_INVALID",
        `"${digest}" is not a valid digest`,
      );
    }
    if (parseDigest(digest).algorithm !== "sha256") {
      await session.cancel();
      return errorResponse(
        400,
        "UNSUPPORTED",
        "only sha256 digests are supported",
      );
    }
    const actual = session.digest();
    if (actual !== digest) {
      await session.cancel();
      return errorResponse(
        400,
        "DIGEST_INVALID",
        "provided digest did not match uploaded content",
        { expected: digest, actual },
      );
    }
    try {
      await session.commit(name, digest);
    } catch (error) {
      // The session is no longer reachable: drop its bytes.
      await session.cancel();
      throw error;
    }
    return new Response(null, {
      status: 201,
      headers: {
        ...API_HEADERS,
        location: location(request, `/v2/${name}/blobs/${digest}`),
        "docker-content-digest": digest,
        "content-length": "0",
      },
    });
  }

  async function handleUploads(
    request: Request,
    url: URL,
    name: string,
    client: string,
  ): Promise<Response> {
    if (request.method !== "POST") {
      return methodNotAllowed(request);
    }
    if (url.searchParams.has("mount")) {
      // Only from the named source (whose pull right `needsOf` made the caller show).
      const mount = mountOf(url);
      if (
        mount !== undefined &&
        (await storage.blobSize(mount.from, mount.digest)) !== undefined
      ) {
        await storage.linkBlob(name, mount.digest);
        await request.body?.cancel();
        return new Response(null, {
          status: 201,
          headers: {
            ...API_HEADERS,
            location: location(request, `/v2/${name}/blobs/${mount.digest}`),
            "docker-content-digest": mount.digest,
            "content-length": "0",
          },
        });
      }
      return await startSession(request, name, client);
    }
    const digest = url.searchParams.get("digest");
    if (digest !== null && singlePost) {
      const session = await storage.startUpload();
      try {
        if (request.body) {
          await session.append(request.body, declaredLength(request));
        }
      } catch (error) {
        // No one can resume a single-request upload: drop its bytes.
        await session.cancel();
        throw error;
      }
      return await finishUpload(request, name, session, digest);
    }
    return await startSession(request, name, client);
  }

  async function handleUpload(
    request: Request,
    url: URL,
    name: string,
    id: string,
  ): Promise<Response> {
    const upload = uploads.get(id, name);
    if (upload === undefined) {
      await request.body?.cancel();
      return errorResponse(
        404,
        "BLOB_UPLOAD_UNKNOWN",
        `upload ${id} is not known`,
      );
    }
    return await uploads.use(
      upload,
      () => uploadRequest(request, url, name, id, upload.session),
    );
  }

  /** One request to a known upload session: status, cancel, a chunk, or the final PUT. */
  async function uploadRequest(
    request: Request,
    url: URL,
    name: string,
    id: string,
    session: UploadSession,
  ): Promise<Response> {
    const statusHeaders = () => ({
      ...API_HEADERS,
      location: location(request, `/v2/${name}/blobs/uploads/${id}`),
      "docker-upload-uuid": id,
      range: `0-${Math.max(0, session.size - 1)}`,
      "content-length": "0",
    });
    switch (request.method) {
      case "GET":
        return new Response(null, { status: 204, headers: statusHeaders() });
      case "DELETE":
        uploads.remove(id);
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
            await request.body?.cancel();
            return new Response(
              JSON.stringify({
                errors: [{
                  code: "BLOB_UPLOAD_INVALID",
                  message:
                    `Content-Range "${range}" does not continue at ${session.size}`,
                }],
              }),
              {
                status: 416,
                headers: {
                  ...statusHeaders(),
                  "content-type": "application/json",
                },
              },
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
          await request.body?.cancel();
          return errorResponse(
            400,
            "DIGEST_INVALID",
            "the digest query parameter is missing",
          );
        }
        if (request.body) {
          await session.append(request.body, declaredLength(request));
        }
        uploads.remove(id);
        return await finishUpload(request, name, session, digest);
      }
      default:
        await request.body?.cancel();
        return methodNotAllowed(request);
    }
  }

  async function handleBlob(
    request: Request,
    name: string,
    digest: string,
  ): Promise<Response> {
    if (!validDigest(digest)) {
      return errorResponse(
        400,
        "DIGEST_INVALID",
        `"${digest}" is not a valid digest`,
      );
    }
    if (request.method === "DELETE") {
      if (!allowDelete) {
        return errorResponse(405, "UNSUPPORTED", "deletes are disabled");
      }
      return (await storage.deleteBlob(name, digest))
        ? new Response(null, { status: 202, headers: API_HEADERS })
        : errorResponse(404, "BLOB_UNKNOWN", `blob ${digest} is not known`);
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return methodNotAllowed(request);
    }
    const size = await storage.blobSize(name, digest);
    if (size === undefined) {
      return request.method === "HEAD"
        ? new Response(null, { status: 404, headers: API_HEADERS })
        : errorResponse(404, "BLOB_UNKNOWN", `blob ${digest} is not known`);
    }
    const headers: Record<string, string> = {
      ...API_HEADERS,
      "docker-content-digest": digest,
      "content-type": "application/octet-stream",
      "accept-ranges": "bytes",
    };
    if (request.method === "GET") {
      const redirect = options.redirectBlob?.(name, digest);
      if (redirect !== undefined) {
        return new Response(null, {
          status: 307,
          headers: { ...API_HEADERS, location: redirect },
        });
      }
    }
    const rangeHeader = request.headers.get("range");
    if (rangeHeader !== null && request.method === "GET") {
      const match = /^bytes=(\d*)-(\d*)$/.exec(rangeHeader.trim());
      let start = match?.[1] ? Number(match[1]) : NaN;
      let end = match?.[2] ? Number(match[2]) : size - 1;
      if (match && match[1] === "" && match[2] !== "") {
        start = Math.max(0, size - Number(match[2]));
        end = size - 1;
      }
      if (!match || Number.isNaN(start) || start > end || start >= size) {
        return new Response(null, {
          status: 416,
          headers: { ...API_HEADERS, "content-range": `bytes */${size}` },
        });
      }
      end = Math.min(end, size - 1);
      return new Response(await storage.readBlob(digest, { start, end }), {
        status: 206,
        headers: {
          ...headers,
          "content-range": `bytes ${start}-${end}/${size}`,
          "content-length": String(end - start + 1),
        },
      });
    }
    headers["content-length"] = String(size);
    if (request.method === "HEAD") {
      return new Response(null, { status: 200, headers });
    }
    return new Response(await storage.readBlob(digest), {
      status: 200,
      headers,
    });
  }

  async function putManifest(
    request: Request,
    name: string,
    reference: string,
  ): Promise<Response> {
    const isDigest = reference.includes(":");
    if (isDigest ? !validDigest(reference) : !TAG_REGEXP.test(reference)) {
      await request.body?.cancel();
      return errorResponse(
        400,
        isDigest ? "DIGEST_INVALID" : "TAG_INVALID",
        `"${reference}" is not a valid ${isDigest ? "digest" : "tag"}`,
      );
    }
    const declared = Number(request.headers.get("content-length") ?? "0");
    if (declared > maxManifestSize) {
      await request.body?.cancel();
      return errorResponse(
        413,
        "SIZE_INVALID",
        `manifests are limited to ${maxManifestSize} bytes`,
      );
    }
    const bytes = await readAtMost(request.body, maxManifestSize);
    if (bytes === undefined) {
      return errorResponse(
        413,
        "SIZE_INVALID",
        `manifests are limited to ${maxManifestSize} bytes`,
      );
    }
    let document: (ImageManifest | ImageIndex) & { schemaVersion?: number };
    try {
      document = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return errorResponse(
        400,
        "MANIFEST_INVALID",
        "the manifest is not valid JSON",
      );
    }
    if (
      typeof document !== "object" || document === null ||
      Array.isArray(document)
    ) {
      return errorResponse(
        400,
        "MANIFEST_INVALID",
        "the manifest is not a JSON object",
      );
    }
    const contentType =
      request.headers.get("content-type")?.split(";")[0].trim() || undefined;
    const mediaType = contentType ?? document.mediaType;
    if (!isManifestMediaType(mediaType) && !isIndexMediaType(mediaType)) {
      return errorResponse(
        400,
        "MANIFEST_INVALID",
        `unsupported manifest media type "${mediaType ?? ""}"`,
      );
    }
    if (document.mediaType !== undefined && document.mediaType !== mediaType) {
      return errorResponse(
        400,
        "MANIFEST_INVALID",
        `the mediaType "${document.mediaType}" does not match the Content-Type "${mediaType}"`,
      );
    }
    if (document.schemaVersion !== 2) {
      return errorResponse(400, "MANIFEST_INVALID", "schemaVersion must be 2");
    }
    const digest = digestOf(bytes);
    if (isDigest && reference !== digest) {
      return errorResponse(
        400,
        "DIGEST_INVALID",
        `the manifest's digest is ${digest}, not ${reference}`,
      );
    }
    if (isManifestMediaType(mediaType)) {
      const manifest = document as ImageManifest;
      if (
        typeof manifest.config?.digest !== "string" ||
        !Array.isArray(manifest.layers)
      ) {
        return errorResponse(
          400,
          "MANIFEST_INVALID",
          "a manifest needs a config and a layers array",
        );
      }
      for (const blob of [manifest.config, ...manifest.layers]) {
        if (typeof blob?.digest !== "string" || !validDigest(blob.digest)) {
          return errorResponse(
            400,
            "MANIFEST_INVALID",
            "a descriptor has an invalid digest",
          );
        }
        if ((await storage.blobSize(name, blob.digest)) === undefined) {
          return errorResponse(
            400,
            "MANIFEST_BLOB_UNKNOWN",
            `blob ${blob.digest} is not known`,
            { digest: blob.digest },
          );
        }
      }
    } else {
      const index = document as ImageIndex;
      if (!Array.isArray(index.manifests)) {
        return errorResponse(
          400,
          "MANIFEST_INVALID",
          "an index needs a manifests array",
        );
      }
      for (const entry of index.manifests) {
        if (typeof entry?.digest !== "string" || !validDigest(entry.digest)) {
          return errorResponse(
            400,
            "MANIFEST_INVALID",
            "an index entry has an invalid digest",
          );
        }
        if ((await storage.getManifest(name, entry.digest)) === undefined) {
          return errorResponse(
            400,
            "MANIFEST_BLOB_UNKNOWN",
            `manifest ${entry.digest} is not known`,
            { digest: entry.digest },
          );
        }
      }
    }
    await storage.putManifest(
      name,
      { bytes, mediaType, digest },
      isDigest ? undefined : reference,
    );
    const headers: Record<string, string> = {
      ...API_HEADERS,
      location: location(request, `/v2/${name}/manifests/${digest}`),
      "docker-content-digest": digest,
      "content-length": "0",
    };
    const subject = (document as { subject?: Descriptor }).subject;
    if (typeof subject?.digest === "string") {
      headers["oci-subject"] = subject.digest;
    }
    return new Response(null, { status: 201, headers });
  }

  async function handleManifest(
    request: Request,
    name: string,
    reference: string,
  ): Promise<Response> {
    if (request.method === "PUT") {
      return await putManifest(request, name, reference);
    }
    if (request.method === "DELETE") {
      if (!allowDelete) {
        return errorResponse(405, "UNSUPPORTED", "deletes are disabled");
      }
      return (await storage.deleteManifest(name, reference))
        ? new Response(null, { status: 202, headers: API_HEADERS })
        : errorResponse(
          404,
          "MANIFEST_UNKNOWN",
          `manifest ${reference} is not known`,
        );
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return methodNotAllowed(request);
    }
    const manifest = await storage.getManifest(name, reference);
    if (manifest === undefined) {
      return request.method === "HEAD"
        ? new Response(null, { status: 404, headers: API_HEADERS })
        : errorResponse(
          404,
          "MANIFEST_UNKNOWN",
          `manifest ${reference} is not known`,
        );
    }
    const headers = {
      ...API_HEADERS,
      "content-type": manifest.mediaType,
      "docker-content-digest": manifest.digest,
      "content-length": String(manifest.bytes.byteLength),
    };
    return new Response(
      request.method === "HEAD"
        ? null
        : manifest.bytes as Uint8Array<ArrayBuffer>,
      { status: 200, headers },
    );
  }

  async function handleTags(
    request: Request,
    url: URL,
    name: string,
  ): Promise<Response> {
    if (request.method !== "GET") {
      return methodNotAllowed(request);
    }
    const last = url.searchParams.get("last");
    const nText = url.searchParams.get("n");
    const n = nText === null ? undefined : Number(nText);
    if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
      return errorResponse(
        400,
        "PAGINATION_NUMBER_INVALID",
        `n="${nText}" is not a number`,
      );
    }
    const all = await storage.listTags(name);
    if (all === undefined) {
      return errorResponse(
        404,
        "NAME_UNKNOWN",
        `repository ${name} is not known`,
      );
    }

    let tags = last === null ? all : all.filter((tag) => tag > last);
    const headers: Record<string, string> = { ...API_HEADERS };
    if (n !== undefined) {
      if (tags.length > n) {
        tags = tags.slice(0, n);
        if (n > 0) {
          headers.link = `</v2/${name}/tags/list?n=${n}&last=${
            encodeURIComponent(tags[tags.length - 1])
          }>; rel="next"`;
        }
      }
    }
    return Response.json({ name, tags }, { headers });
  }

  async function handleReferrers(
    request: Request,
    url: URL,
    name: string,
    digest: string,
  ): Promise<Response> {
    if (request.method !== "GET") {
      return methodNotAllowed(request);
    }
    if (!validDigest(digest)) {
      return errorResponse(
        400,
        "DIGEST_INVALID",
        `"${digest}" is not a valid digest`,
      );
    }
    const wanted = url.searchParams.get("artifactType");
    const manifests: Descriptor[] = [];
    for (const stored of await storage.listManifests(name)) {
      let document: (ImageManifest | ImageIndex) | undefined;
      try {
        document = JSON.parse(new TextDecoder().decode(stored.bytes));
      } catch {
        continue;
      }
      if (document?.subject?.digest !== digest) continue;
      const artifactType = document.artifactType ??
        (document as ImageManifest).config?.mediaType;
      if (wanted !== null && artifactType !== wanted) continue;
      manifests.push({
        mediaType: stored.mediaType,
        digest: stored.digest,
        size: stored.bytes.byteLength,
        ...(artifactType ? { artifactType } : {}),
        ...(document.annotations ? { annotations: document.annotations } : {}),
      });
    }
    const headers: Record<string, string> = {
      ...API_HEADERS,
      "content-type": OCI_INDEX_MEDIA_TYPE,
    };
    if (wanted !== null) headers["oci-filters-applied"] = "artifactType";
    return new Response(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX_MEDIA_TYPE,
        manifests,
      }),
      { status: 200, headers },
    );
  }

  const handler = async function registry(
    request: Request,
    info?: RequestInfo,
  ): Promise<Response> {
    const url = new URL(request.url);
    try {
      if (options.auth !== undefined) {
        if (url.pathname === "/token") return await options.auth.token(request);
        const denied = await options.auth.check(
          request,
          needsOf(request, url),
        );
        if (denied !== undefined) {
          await request.body?.cancel();
          return denied;
        }
      }
      if (url.pathname === "/v2/" || url.pathname === "/v2") {
        await request.body?.cancel();
        return request.method === "GET" || request.method === "HEAD"
          ? Response.json({}, { headers: API_HEADERS })
          : methodNotAllowed(request);
      }
      const found = route(url.pathname);
      if (found === undefined) {
        await request.body?.cancel();
        return errorResponse(
          404,
          "NOT_FOUND",
          `no such endpoint: ${url.pathname}`,
        );
      }
      const problem = nameProblem(found.name);
      if (problem !== undefined) {
        await request.body?.cancel();
        return errorResponse(400, "NAME_INVALID", problem);
      }
      switch (found.kind) {
        case "uploads":
          return await handleUploads(request, url, found.name, clientOf(info));
        case "upload":
          return await handleUpload(request, url, found.name, found.rest);
        case "blob":
          return await handleBlob(request, found.name, found.rest);
        case "manifest":
          return await handleManifest(request, found.name, found.rest);
        case "tags":
          return await handleTags(request, url, found.name);
        case "referrers":
          return await handleReferrers(request, url, found.name, found.rest);
      }
    } catch (error) {
      await request.body?.cancel().catch(() => {});
      return limitResponse(error) ?? errorResponse(
        500,
        "UNKNOWN",
        `internal error: ${(error as Error).message}`,
      );
    }
  };
  const answer = options.faults ? withFaults(handler, options.faults) : handler;
  const close = () => uploads.close();
  return Object.assign(
    (request: Request, info?: RequestInfo) => answer(request, info),
    { close, [Symbol.asyncDispose]: close },
  );
}
