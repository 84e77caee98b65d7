/**
 * Referrers on a registry (distribution-spec 1.1): the referrers API
 * (`GET …/referrers/<digest>`), and on a registry without it (distribution 2.8 answers 404) the
 * spec's fallback, an index of the referrers under the tag `<alg>-<hex>` of the subject's digest,
 * which the client that pushes a referrer updates: it reads the index, adds the referrer and
 * writes the index back. Two clients that do so at once race, as the spec says: the last
 * write wins and the other's referrer drops out of the index (the manifest itself stays).
 *
 * @module
 */
import { parseDigest } from "../../oci/digest.ts";
import type { Descriptor, ImageIndex } from "../../oci/manifest.ts";
import { OCI_INDEX_MEDIA_TYPE } from "../../oci/media_types.ts";
import { endpoint, type ImageReference, withTag } from "../../oci/reference.ts";
import { ensureStatus, RegistryError } from "../../transport/errors.ts";
import { defaultOpener } from "../../transport/opener.ts";
import type { RegistryOptions } from "./blobs.ts";
import { encodeManifest, fetchManifest } from "./manifests.ts";
import { putManifest } from "./upload.ts";

/**
 * The fallback tag of a subject's referrers: its digest with `-` for `:`, the algorithm cut to
 * 32 characters and the hex to 64, as the spec says.
 *
 * @param digest The subject's digest.
 * @returns The tag.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { referrersTag } from "./referrers.ts";
 * assert.equal(referrersTag(`sha256:${"a".repeat(64)}`), `sha256-${"a".repeat(64)}`);
 * ```
 */
export function referrersTag(digest: string): string {
  const { algorithm, encoded } = parseDigest(digest);
  return `${algorithm.slice(0, 32)}-${encoded.slice(0, 64)}`;
}

/** Options of {@linkcode fetchReferrers}. */
export interface FetchReferrersOptions extends RegistryOptions {
  /** Only referrers of this artifact type (the registry filters, or this does). */
  readonly artifactType?: string;
}

function keepType(
  manifests: readonly Descriptor[],
  artifactType: string | undefined,
): Descriptor[] {
  return manifests.filter((d) =>
    artifactType === undefined || d.artifactType === artifactType
  );
}

/**
 * Asks the referrers API of a repository for a subject's referrers.
 *
 * @param ref The repository.
 * @param subject The subject's digest.
 * @param options Artifact type, transport and signal.
 * @returns The referrers, or undefined when the registry has no referrers API (404).
 * @throws {RegistryError} On any other refusal, or an answer that is not an index.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fetchReferrers } from "./referrers.ts";
 * import { parseReference } from "../../oci/reference.ts";
 * import { createRegistry } from "../../server/mod.ts";
 * const found = await fetchReferrers(parseReference("127.0.0.1:5000/app"), `sha256:${"a".repeat(64)}`, { transport: createRegistry() });
 * assert.deepEqual(found, []);
 * ```
 */
export async function fetchReferrers(
  ref: ImageReference,
  subject: string,
  options: FetchReferrersOptions = {},
): Promise<Descriptor[] | undefined> {
  parseDigest(subject);
  const transport = options.transport ?? defaultOpener();
  const url = new URL(endpoint(ref, `${ref.repository}/referrers/${subject}`));
  if (options.artifactType !== undefined) {
    url.searchParams.set("artifactType", options.artifactType);
  }
  const request = new Request(url, {
    headers: { accept: OCI_INDEX_MEDIA_TYPE },
    signal: options.signal,
  });
  const response = await transport(request);
  if (response.status === 404) {
    await response.body?.cancel();
    return undefined;
  }
  await ensureStatus(request, response, 200);
  let body: Partial<ImageIndex>;
  try {
    body = await response.json();
  } catch (error) {
    throw new RegistryError({
      method: "GET",
      url: request.url,
      status: 200,
      reason: "the referrers answer is not JSON",
      cause: error,
    });
  }
  if (!Array.isArray(body?.manifests)) {
    throw new RegistryError({
      method: "GET",
      url: request.url,
      status: 200,
      reason: "the referrers answer is not an index (no manifests array)",
    });
  }
  return keepType(body.manifests, options.artifactType);
}

/**
 * Reads the fallback index of a subject's referrers (the tag {@linkcode referrersTag}).
 *
 * @param ref The repository.
 * @param subject The subject's digest.
 * @param options Transport and signal.
 * @returns Its entries; none when the tag is not there.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readReferrersIndex } from "./referrers.ts";
 * import { parseReference } from "../../oci/reference.ts";
 * import { createRegistry } from "../../server/mod.ts";
 * const found = await readReferrersIndex(parseReference("127.0.0.1:5000/app"), `sha256:${"a".repeat(64)}`, { transport: createRegistry() });
 * assert.deepEqual(found, []);
 * ```
 */
export async function readReferrersIndex(
  ref: ImageReference,
  subject: string,
  options: FetchReferrersOptions = {},
): Promise<Descriptor[]> {
  try {
    const { document } = await fetchManifest(
      withTag(ref, referrersTag(subject)),
      options,
    );
    const manifests = (document as ImageIndex).manifests;
    return keepType(
      Array.isArray(manifests) ? manifests : [],
      options.artifactType,
    );
  } catch (error) {
    if (error instanceof RegistryError && error.status === 404) return [];
    throw error;
  }
}

/**
 * Adds a referrer to the fallback index of its subject: reads the index under
 * {@linkcode referrersTag} (none yet is an empty one), adds the descriptor unless it is there,
 * and writes the index back under the tag. Not atomic: a writer that does the same meanwhile
 * loses its entry (the spec's race); attaching again puts it back.
 *
 * @param ref The repository.
 * @param subject The subject's digest.
 * @param referrer The referrer's descriptor, with its `artifactType` and annotations.
 * @param options Transport and signal.
 * @returns Whether the index changed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addToReferrersIndex, readReferrersIndex } from "./referrers.ts";
 * import { parseReference } from "../../oci/reference.ts";
 * import { createRegistry } from "../../server/mod.ts";
 * import { bytesSource } from "../../transport/request_body.ts";
 * import { remoteStore } from "../remote_store.ts";
 * import { digestOf } from "../../oci/digest.ts";
 * const transport = createRegistry();
 * const ref = parseReference("127.0.0.1:5000/app");
 * const config = { mediaType: "application/vnd.oci.empty.v1+json", digest: digestOf("{}"), size: 2 };
 * await remoteStore(ref, { transport }).push(config, bytesSource("{}"));
 * const bytes = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config, layers: [] });
 * const referrer = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: digestOf(bytes), size: bytes.length, artifactType: "application/x.note" };
 * await remoteStore(ref, { transport }).push(referrer, bytesSource(bytes));
 * const subject = `sha256:${"a".repeat(64)}`;
 * assert.ok(await addToReferrersIndex(ref, subject, referrer, { transport }));
 * assert.deepEqual((await readReferrersIndex(ref, subject, { transport })).map((d) => d.digest), [referrer.digest]);
 * ```
 */
export async function addToReferrersIndex(
  ref: ImageReference,
  subject: string,
  referrer: Descriptor,
  options: RegistryOptions = {},
): Promise<boolean> {
  const entries = await readReferrersIndex(ref, subject, options);
  if (entries.some((d) => d.digest === referrer.digest)) return false;
  await writeReferrersIndex(ref, subject, [...entries, referrer], options);
  return true;
}

/**
 * Removes a referrer from the fallback index of its subject, as the spec asks of a client that
 * deletes a referrer on a registry without the referrers API: reads the index under
 * {@linkcode referrersTag}, drops the descriptor, and writes the index back under the tag (an
 * empty index when it was the last). Not atomic, as {@linkcode addToReferrersIndex} is not: a
 * writer that changes the index meanwhile may lose its change or bring the entry back.
 *
 * @param ref The repository.
 * @param subject The subject's digest.
 * @param referrer The referrer's digest.
 * @param options Transport and signal.
 * @returns Whether the index changed (false when the referrer was not in it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addToReferrersIndex, readReferrersIndex, removeFromReferrersIndex } from "./referrers.ts";
 * import { parseReference } from "../../oci/reference.ts";
 * import { createRegistry } from "../../server/mod.ts";
 * import { bytesSource } from "../../transport/request_body.ts";
 * import { remoteStore } from "../remote_store.ts";
 * import { digestOf } from "../../oci/digest.ts";
 * const transport = createRegistry();
 * const ref = parseReference("127.0.0.1:5000/app");
 * const config = { mediaType: "application/vnd.oci.empty.v1+json", digest: digestOf("{}"), size: 2 };
 * await remoteStore(ref, { transport }).push(config, bytesSource("{}"));
 * const bytes = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config, layers: [] });
 * const referrer = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: digestOf(bytes), size: bytes.length };
 * await remoteStore(ref, { transport }).push(referrer, bytesSource(bytes));
 * const subject = `sha256:${"a".repeat(64)}`;
 * await addToReferrersIndex(ref, subject, referrer, { transport });
 * assert.ok(await removeFromReferrersIndex(ref, subject, referrer.digest, { transport }));
 * assert.deepEqual(await readReferrersIndex(ref, subject, { transport }), []);
 * assert.equal(await removeFromReferrersIndex(ref, subject, referrer.digest, { transport }), false);
 * ```
 */
export async function removeFromReferrersIndex(
  ref: ImageReference,
  subject: string,
  referrer: string,
  options: RegistryOptions = {},
): Promise<boolean> {
  const entries = await readReferrersIndex(ref, subject, options);
  const kept = entries.filter((d) => d.digest !== referrer);
  if (kept.length === entries.length) return false;
  await writeReferrersIndex(ref, subject, kept, options);
  return true;
}

/** Writes the fallback index of a subject under {@linkcode referrersTag}. */
async function writeReferrersIndex(
  ref: ImageReference,
  subject: string,
  manifests: Descriptor[],
  options: RegistryOptions,
): Promise<void> {
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: OCI_INDEX_MEDIA_TYPE,
    manifests,
  };
  const { bytes, digest, size } = encodeManifest(index);
  await putManifest(
    ref,
    bytes,
    { mediaType: OCI_INDEX_MEDIA_TYPE, digest, size },
    referrersTag(subject),
    options,
  );
}
