/**
 * The words of `--json`: every command prints one object with the same vocabulary —
 * `source` and `destination` (canonical references, `layout:DIR:TAG` or a directory), `digest`,
 * `mediaType`, `size`, `platform` (one) or `platforms` (an index's), and the blob counts
 * `copied` (bytes sent), `mounted` (taken from another repository of the registry, no bytes
 * sent) and `existing` (already there) — and a failure prints `{"error": {...}}`.
 *
 * @module
 */
import type { Descriptor } from "../oci/manifest.ts";
import { formatPlatform, type Platform } from "../oci/platform.ts";
import { RegistryError } from "../transport/errors.ts";
import { NetworkError } from "../transport/network_errors.ts";
import { redactSecrets } from "../transport/errors.ts";
import { UsageError } from "./context.ts";

/** What `--json` prints on failure, on stdout (the exit status does not change). */
export interface JsonError {
  readonly error: {
    /** The message, as on stderr (without `oci: `). */
    readonly message: string;
    /**
     * The registry's error code (`MANIFEST_UNKNOWN`, `UNAUTHORIZED`, …) when it gave one; else
     * `USAGE` (a command-line mistake), `INTERRUPTED` (Ctrl-C), `NETWORK_<KIND>` (e.g.
     * `NETWORK_REFUSED`, `NETWORK_DNS`), or the error's name (`TimeoutError`, `NotFound`, …).
     */
    readonly code: string;
    /** The HTTP status when a registry answered, else null. */
    readonly status: number | null;
    /** The URL of the request that failed (credentials redacted), else null. */
    readonly url: string | null;
  };
}

/**
 * The `--json` object of a failure.
 *
 * @param error What was thrown.
 * @param interrupted Whether Ctrl-C stopped the command.
 * @returns The object.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorJson } from "./output.ts";
 * import { RegistryError } from "../transport/errors.ts";
 * const error = new RegistryError({ method: "GET", url: "http://127.0.0.1:5000/v2/a/manifests/v1", status: 404, codes: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] });
 * assert.deepEqual(errorJson(error).error.code, "MANIFEST_UNKNOWN");
 * assert.equal(errorJson(new Error("boom")).error.status, null);
 * ```
 */
export function errorJson(error: unknown, interrupted = false): JsonError {
  const message = redactSecrets(String((error as Error)?.message ?? error));
  let code = error instanceof Error ? error.name : "Error";
  let status: number | null = null;
  let url: string | null = null;
  if (error instanceof RegistryError) {
    code = error.codes[0]?.code ?? `HTTP_${error.status}`;
    status = error.status;
    url = error.url;
  } else if (error instanceof NetworkError) {
    code = `NETWORK_${error.kind.toUpperCase()}`;
    url = error.url;
  } else if (error instanceof UsageError) {
    code = "USAGE";
  } else if (
    error instanceof Error && typeof (error as { url?: unknown }).url ===
      "string"
  ) {
    url = (error as unknown as { url: string }).url;
  }
  if (interrupted) code = "INTERRUPTED";
  return { error: { message, code, status, url } };
}

/** A descriptor's three words: `digest`, `mediaType`, `size`. */
export function describe(
  descriptor: Descriptor,
): { digest: string; mediaType: string; size: number } {
  return {
    digest: descriptor.digest,
    mediaType: descriptor.mediaType,
    size: descriptor.size,
  };
}

/** A platform as `--json` prints it: `os`, `architecture`, and `variant` when there is one. */
export function platformJson(
  platform: Platform,
): { os: string; architecture: string; variant?: string } {
  return {
    os: platform.os,
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    ...(platform["os.version"] ? { "os.version": platform["os.version"] } : {}),
  };
}

/** The platforms of an index's entries, in its order (entries without one left out). */
export function indexPlatforms(
  manifests: readonly Descriptor[],
): Platform[] {
  return manifests.flatMap((m) => m.platform ? [m.platform] : []);
}

/** Platforms as a list for people: `linux/amd64, linux/arm64/v8`. */
export function formatPlatforms(platforms: readonly Platform[]): string {
  return platforms.map(formatPlatform).join(", ");
}
