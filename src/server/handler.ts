/**
 * The embedded registry: a function of `Request` that implements the OCI distribution spec
 * v1.1 client endpoints, on top of {@linkcode Repositories} (over the stores). This file routes a request
 * to its resource (`uploads.ts`, `blobs.ts`, `manifests.ts`, `tags.ts`, `referrers.ts`), checks
 * authorisation first, and turns what a resource throws into the OCI error answer.
 *
 * @module
 */
import type { Need, RegistryAuth } from "./auth.ts";
import { checkRepositoryName } from "./repository_name.ts";
import { memoryRepositories, type Repositories } from "./repositories.ts";
import { UploadSessions } from "./upload_sessions.ts";
import type { RegistryContext } from "./context.ts";
import {
  API_HEADERS,
  httpErrorOf,
  methodNotAllowed,
  notFound,
} from "./errors.ts";
import { mountOf, serveUpload, serveUploads } from "./uploads.ts";
import { serveBlob } from "./blobs.ts";
import { serveManifest } from "./manifests.ts";
import { serveTags } from "./tags.ts";
import { serveReferrers } from "./referrers.ts";
import { serveCatalog } from "./catalog.ts";
import { MAX_MANIFEST_SIZE } from "../oci/parse_manifest.ts";

/** Options of {@linkcode createRegistry}. Those marked "for testing" model real registries' quirks. */
export interface RegistryServerOptions {
  /**
   * Where content lives: `memoryRepositories()`, or `layoutRepositories(root)` on disk
   * (`serveRegistry({ root })` makes those).
   * @default {memoryRepositories()}
   */
  readonly repositories?: Repositories;
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

/** Who a request comes from, for per-client limits: its remote address. */
function clientOf(info: RequestInfo | undefined): string {
  const address = info?.remoteAddr;
  if (address === undefined) return "an in-process client";
  return "hostname" in address ? address.hostname : address.transport;
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

/** Whether a request is for the catalog, `/v2/_catalog`. */
function isCatalog(url: URL): boolean {
  return url.pathname === "/v2/_catalog";
}

/** The action a request's method takes on the repository of its path. */
function actionOf(method: string): Need["action"] {
  if (method === "GET" || method === "HEAD") return "pull";
  return method === "DELETE" ? "delete" : "push";
}

/**
 * Every repository a request acts on, and how: the repository of its path, and the source of a
 * mount, which the request reads. Authorisation checks all of them, so that no endpoint reaches
 * a repository its caller may not.
 */
function needsOf(request: Request, url: URL): Need[] {
  if (isCatalog(url)) return [{ action: "catalog" }];
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

/** Answers a request that passed the auth gate: `/v2/`, or a resource of a repository. */
async function serve(
  context: RegistryContext,
  request: Request,
  url: URL,
  info: RequestInfo | undefined,
): Promise<Response> {
  if (url.pathname === "/v2/" || url.pathname === "/v2") {
    await request.body?.cancel();
    if (request.method !== "GET" && request.method !== "HEAD") {
      throw methodNotAllowed(request.method);
    }
    return Response.json({}, { headers: API_HEADERS });
  }
  if (isCatalog(url)) return await serveCatalog(context, request, url);
  const found = route(url.pathname);
  if (found === undefined) throw notFound(url.pathname);
  checkRepositoryName(found.name);
  switch (found.kind) {
    case "uploads":
      return await serveUploads(
        context,
        request,
        url,
        found.name,
        clientOf(info),
      );
    case "upload":
      return await serveUpload(context, request, url, found.name, found.rest);
    case "blob":
      return await serveBlob(context, request, found.name, found.rest);
    case "manifest":
      return await serveManifest(context, request, found.name, found.rest);
    case "tags":
      return await serveTags(context, request, url, found.name);
    case "referrers":
      return await serveReferrers(
        context,
        request,
        url,
        found.name,
        found.rest,
      );
  }
}

/**
 * Creates a registry handler: `(Request) => Promise<Response>`, for `Deno.serve` or for calling
 * in-process (no socket). Implements `GET /v2/`; pull (GET/HEAD of manifests and blobs, by tag
 * or digest, `Range` on blobs); push (POST, monolithic PUT, single POST `?digest=`, PATCH chunks
 * with `Content-Range`, upload status, cancel); cross-repository mount; tag listing with `n`,
 * `last` and `Link`; the catalog (`/v2/_catalog`, likewise paged); the referrers API with `artifactType` filtering and `OCI-Subject`; and
 * DELETE of manifests, tags and blobs. Uploads are verified while they stream; manifests are
 * checked by `parseManifest` (size, JSON, media type, schema version, descriptors) and for
 * their blobs (or child manifests) in the repository.
 *
 * @param options Repositories, and behaviours for testing.
 * @returns The handler.
 *
 * @example Push and pull a blob in-process
 * ```ts
 * import assert from "node:assert/strict";
 * import { createRegistry } from "./handler.ts";
 * import { digestOf } from "../oci/digest.ts";
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
  const uploads = new UploadSessions({
    idleTimeout: options.uploadTimeout ?? 60 * 60 * 1000,
    maxSessions: options.maxUploads ?? 4096,
    maxSessionsPerClient: options.maxUploadsPerClient ?? 1024,
  });
  const context: RegistryContext = {
    repositories: options.repositories ?? memoryRepositories(),
    uploads,
    allowDelete: options.delete ?? true,
    singlePost: options.singlePost ?? true,
    maxManifestSize: options.maxManifestSize ?? MAX_MANIFEST_SIZE,
    redirectBlob: options.redirectBlob,
    location: (request, path) =>
      options.absoluteLocation ? new URL(path, request.url).href : path,
  };
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
      return await serve(context, request, url, info);
    } catch (error) {
      // Whatever was refused, the rest of the body is not read.
      await request.body?.cancel().catch(() => {});
      return httpErrorOf(error).toResponse();
    }
  };
  const close = () => uploads.close();
  return Object.assign(
    (request: Request, info?: RequestInfo) => handler(request, info),
    { close, [Symbol.asyncDispose]: close },
  );
}
