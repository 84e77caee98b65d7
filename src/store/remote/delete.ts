/**
 * Deletes on a registry: `DELETE …/manifests/<digest>` (the manifest and every tag on it),
 * `DELETE …/manifests/<tag>` (the tag only, where the registry allows it) and
 * `DELETE …/blobs/<digest>`; a registry that refuses says so in a {@linkcode DeleteRefusedError}.
 *
 * @module
 */
import { parseDigest } from "../../oci/digest.ts";
import {
  blobUrl,
  formatReference,
  type ImageReference,
  manifestUrl,
} from "../../oci/reference.ts";
import { RegistryError, registryErrorOf } from "../../transport/errors.ts";
import { defaultOpener } from "../../transport/opener.ts";
import type { RegistryOptions } from "./blobs.ts";

/**
 * A registry refused a delete: deletes are turned off (`405`, `UNSUPPORTED`: distribution
 * without `storage.delete.enabled: true`), or it cannot delete a tag (distribution 2.8 answers
 * `DIGEST_INVALID` to the `DELETE` of a tag). A {@linkcode RegistryError} (method, URL, status
 * and the registry's codes) whose message says what could not be deleted and why.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DeleteRefusedError } from "./delete.ts";
 * import { RegistryError } from "../../transport/errors.ts";
 * const cause = new RegistryError({ method: "DELETE", url: "http://r/v2/app/manifests/v1", status: 405, codes: [{ code: "UNSUPPORTED", message: "unsupported" }] });
 * const error = new DeleteRefusedError("tag v1 of r/app", "deletes are turned off", cause);
 * assert.match(error.message, /Cannot delete tag v1 of r\/app: deletes are turned off/);
 * assert.equal(error.status, 405);
 * assert.ok(error.hasCode("UNSUPPORTED"));
 * ```
 */
export class DeleteRefusedError extends RegistryError {
  /**
   * Creates the error.
   *
   * @param what What was to be deleted, for the message.
   * @param why Why the registry refused.
   * @param cause The registry's answer.
   */
  constructor(what: string, why: string, cause: RegistryError) {
    super({
      method: cause.method,
      url: cause.url,
      status: cause.status,
      statusText: cause.statusText,
      codes: cause.codes,
      reason: `Cannot delete ${what}: ${why}`,
      cause,
    });
    this.name = "DeleteRefusedError";
  }
}

/** Sends one DELETE: true on 200/202/204, false on 404, a refusal or registry error otherwise. */
async function sendDelete(
  url: string,
  what: string,
  kind: "manifest" | "tag" | "blob",
  options: RegistryOptions,
): Promise<boolean> {
  const transport = options.transport ?? defaultOpener();
  const request = new Request(url, {
    method: "DELETE",
    signal: options.signal,
  });
  const response = await transport(request);
  if ([200, 202, 204].includes(response.status)) {
    await response.body?.cancel();
    return true;
  }
  if (response.status === 404) {
    await response.body?.cancel();
    return false;
  }
  const error = await registryErrorOf(request, response);
  if (
    response.status === 405 || error.hasCode("UNSUPPORTED")
  ) {
    throw new DeleteRefusedError(
      what,
      kind === "tag"
        ? "the registry does not delete tags (delete the manifest by digest, which removes its tags too)"
        : "the registry does not allow deletes (distribution needs storage.delete.enabled: true)",
      error,
    );
  }
  if (kind === "tag" && error.hasCode("DIGEST_INVALID")) {
    throw new DeleteRefusedError(
      what,
      "the registry deletes manifests by digest only, not tags (distribution 2.8); delete the digest, which removes every tag on it",
      error,
    );
  }
  throw error;
}

/**
 * Deletes a manifest or index by digest, with every tag naming it.
 *
 * @param ref The repository.
 * @param digest The manifest's digest.
 * @param options Transport and signal.
 * @returns False when the registry did not have it (404 `MANIFEST_UNKNOWN`).
 * @throws {DeleteRefusedError} When the registry does not allow deletes.
 * @throws {RegistryError} On any other refusal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deleteManifest } from "./delete.ts";
 * import { parseReference } from "../../oci/reference.ts";
 * import { createRegistry } from "../../server/mod.ts";
 * const transport = createRegistry();
 * const gone = await deleteManifest(parseReference("127.0.0.1:5000/app"), `sha256:${"0".repeat(64)}`, { transport });
 * assert.equal(gone, false);
 * ```
 */
export function deleteManifest(
  ref: ImageReference,
  digest: string,
  options: RegistryOptions = {},
): Promise<boolean> {
  parseDigest(digest);
  return sendDelete(
    manifestUrl(ref, digest),
    `manifest ${digest} of ${
      formatReference({ ...ref, tag: undefined, digest: undefined })
    }`,
    "manifest",
    options,
  );
}

/**
 * Deletes a tag (`DELETE …/manifests/<tag>`); the manifest stays, by digest. Distribution 2.8
 * cannot: it answers `DIGEST_INVALID`, which this reports as a {@linkcode DeleteRefusedError}.
 *
 * @param ref The repository.
 * @param tag The tag.
 * @param options Transport and signal.
 * @returns False when there was no such tag.
 * @throws {DeleteRefusedError} When the registry does not delete tags, or no deletes at all.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deleteTag } from "./delete.ts";
 * import { parseReference } from "../../oci/reference.ts";
 * import { createRegistry } from "../../server/mod.ts";
 * const transport = createRegistry();
 * assert.equal(await deleteTag(parseReference("127.0.0.1:5000/app"), "v1", { transport }), false);
 * ```
 */
export function deleteTag(
  ref: ImageReference,
  tag: string,
  options: RegistryOptions = {},
): Promise<boolean> {
  return sendDelete(
    manifestUrl(ref, tag),
    `tag ${tag} of ${
      formatReference({ ...ref, tag: undefined, digest: undefined })
    }`,
    "tag",
    options,
  );
}

/**
 * Deletes a blob from a repository.
 *
 * @param ref The repository.
 * @param digest The blob's digest.
 * @param options Transport and signal.
 * @returns False when the repository did not have it (404 `BLOB_UNKNOWN`).
 * @throws {DeleteRefusedError} When the registry does not allow deletes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deleteBlob } from "./delete.ts";
 * import { parseReference } from "../../oci/reference.ts";
 * import { createRegistry } from "../../server/mod.ts";
 * const transport = createRegistry();
 * assert.equal(await deleteBlob(parseReference("127.0.0.1:5000/app"), `sha256:${"0".repeat(64)}`, { transport }), false);
 * ```
 */
export function deleteBlob(
  ref: ImageReference,
  digest: string,
  options: RegistryOptions = {},
): Promise<boolean> {
  parseDigest(digest);
  return sendDelete(
    blobUrl(ref, digest),
    `blob ${digest} of ${
      formatReference({ ...ref, tag: undefined, digest: undefined })
    }`,
    "blob",
    options,
  );
}
