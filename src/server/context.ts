/**
 * What the embedded registry's resource handlers share: its repositories, its open upload sessions
 * and its settings, and how they read the parts of a request they check.
 *
 * @module
 */
import { parseDigest } from "../oci/digest.ts";
import { checkRepositoryName } from "./repository_name.ts";
import type { Repositories } from "./repositories.ts";
import type { UploadSessions } from "./upload_sessions.ts";

/** One registry's state and settings, as `createRegistry` resolved them. */
export interface RegistryContext {
  /** Where content lives. */
  readonly repositories: Repositories;
  /** The unfinished upload sessions. */
  readonly uploads: UploadSessions;
  /** Whether DELETE of manifests, tags and blobs is allowed. */
  readonly allowDelete: boolean;
  /** Whether a POST with `?digest=` completes an upload in one request. */
  readonly singlePost: boolean;
  /** Largest manifest accepted, in bytes. */
  readonly maxManifestSize: number;
  /** Where blob GETs are redirected to, if anywhere. */
  readonly redirectBlob?: (
    repository: string,
    digest: string,
  ) => string | undefined;
  /** The `Location` of a path: host-rooted, or absolute with `absoluteLocation`. */
  location(request: Request, path: string): string;
}

/** Whether text is a digest the registry takes (sha256 or sha512, lowercase hex). */
export function isValidDigest(text: string): boolean {
  try {
    parseDigest(text);
    return true;
  } catch {
    return false;
  }
}

/** Whether text is a repository name the registry takes. */
export function isValidName(name: string): boolean {
  try {
    checkRepositoryName(name);
    return true;
  } catch {
    return false;
  }
}

/** The length a request declares for its body, if it does. */
export function declaredLength(request: Request): number | undefined {
  const text = request.headers.get("content-length");
  const length = text === null ? NaN : Number(text);
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}
