/**
 * Registry storage on disk as OCI image layouts: one layout per repository (`ROOT/<repo>/` with
 * `oci-layout` and `index.json`), whose `blobs` is a link to one shared, content-addressed
 * `ROOT/.blobs`. So `skopeo copy oci:ROOT/team/app:v1 …` and `umoci unpack --image
 * ROOT/team/app:v1` read what the server stores. Every write goes to a temporary file, is
 * verified, then renamed; `index.json` updates are serialised and atomic.
 *
 * Names map to paths without collisions by construction: a name's components can never be a
 * layout's own entries (`blobs`, `index.json`, `oci-layout` are refused by
 * `checkRepositoryName`) nor start with a dot, so everything the storage keeps for itself lives
 * under dot-names no name can spell: `ROOT/.blobs`, `ROOT/.uploads`, and the per-repository
 * marker files under `ROOT/.links/<repo>/.digests/`. A nested repository (`team/app/x` beside
 * `team/app`) is a subdirectory of the other's layout that readers of that layout ignore.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import { parseDigest } from "../oci/digest.ts";
import { REF_NAME_ANNOTATION } from "../store/layout_store.ts";
import {
  statOrUndefined,
  writeFileAtomic,
  writeStreamToFile,
} from "../io/files.ts";
import type { Descriptor, ImageIndex } from "../oci/manifest.ts";
import { OCI_INDEX_MEDIA_TYPE } from "../oci/media_types.ts";
import {
  checkRepositoryName,
  type RegistryStorage,
  type StoredManifest,
  type UploadSession,
} from "./storage.ts";

/**
 * Keeps the registry's content in OCI image layouts under a directory.
 *
 * @param root The directory (created when missing).
 * @returns The storage.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layoutStorage } from "./layout_storage.ts";
 * const root = await Deno.makeTempDir();
 * const storage = await layoutStorage(root);
 * assert.equal(await storage.listTags("app"), undefined);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function layoutStorage(root: string): Promise<RegistryStorage> {
  const blobsDir = join(root, ".blobs", "sha256");
  const uploadsDir = join(root, ".uploads");
  await Deno.mkdir(blobsDir, { recursive: true });
  await Deno.mkdir(uploadsDir, { recursive: true });
  const locks = new Map<string, Promise<unknown>>();

  function blobPath(digest: string): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(root, ".blobs", algorithm, encoded);
  }

  /**
   * A marker file per blob a repository may read (pushed or mounted there). The digests sit
   * under `.digests`, a component no name can have, so that no repository's markers are
   * another's (`victim/sha256/<hex>` would otherwise be a marker of `victim`).
   */
  function linkPath(repository: string, digest: string): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(linksDir(repository), algorithm, encoded);
  }

  function linksDir(repository: string): string {
    checkRepositoryName(repository);
    return join(root, ".links", ...repository.split("/"), ".digests");
  }

  async function link(repository: string, digest: string): Promise<void> {
    const path = linkPath(repository, digest);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await Deno.writeFile(path, new Uint8Array());
  }

  /** The layout of a repository: the directory its name spells (checked, so never ours). */
  function repositoryDir(repository: string): string {
    checkRepositoryName(repository);
    return join(root, ...repository.split("/"));
  }

  async function readIndex(
    repository: string,
  ): Promise<ImageIndex | undefined> {
    try {
      return JSON.parse(
        await Deno.readTextFile(join(repositoryDir(repository), "index.json")),
      );
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  }

  /** Runs index.json changes of one repository one at a time. */
  function withIndex<T>(
    repository: string,
    change: (index: ImageIndex) => { index: ImageIndex; result: T },
  ): Promise<T> {
    const previous = locks.get(repository) ?? Promise.resolve();
    const run = previous.then(async () => {
      const dir = repositoryDir(repository);
      let index = await readIndex(repository);
      if (index === undefined) {
        await Deno.mkdir(dir, { recursive: true });
        await writeFileAtomic(
          join(dir, "oci-layout"),
          new TextEncoder().encode('{"imageLayoutVersion":"1.0.0"}'),
        );
        const link = join(dir, "blobs");
        if (!(await statOrUndefined(link))) {
          await Deno.symlink(relative(dir, join(root, ".blobs")), link);
        }
        index = {
          schemaVersion: 2,
          mediaType: OCI_INDEX_MEDIA_TYPE,
          manifests: [],
        };
      }
      const { index: next, result } = change(index);
      await writeFileAtomic(
        join(dir, "index.json"),
        new TextEncoder().encode(JSON.stringify(next)),
      );
      return result;
    });
    locks.set(repository, run.catch(() => {}));
    return run;
  }

  async function readManifest(
    descriptor: Descriptor,
  ): Promise<StoredManifest | undefined> {
    try {
      const bytes = await Deno.readFile(blobPath(descriptor.digest));
      return {
        bytes,
        mediaType: descriptor.mediaType,
        digest: descriptor.digest,
      };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  }

  async function commitBlob(temp: string, digest: string): Promise<void> {
    const path = blobPath(digest);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await Deno.rename(temp, path);
  }

  return {
    async blobSize(repository, digest) {
      if (
        repository !== undefined &&
        !(await statOrUndefined(linkPath(repository, digest)))
      ) return undefined;
      return (await statOrUndefined(blobPath(digest)))?.size;
    },
    linkBlob(repository, digest) {
      return link(repository, digest);
    },
    async readBlob(digest, range) {
      const file = await Deno.open(blobPath(digest));
      if (range === undefined) return file.readable;
      await file.seek(range.start, Deno.SeekMode.Start);
      let left = range.end - range.start + 1;
      const reader = file.readable.getReader();
      return new ReadableStream({
        async pull(controller) {
          const { value, done } = await reader.read();
          if (done || left <= 0) {
            controller.close();
            await reader.cancel();
            return;
          }
          const chunk = value.subarray(0, left);
          left -= chunk.byteLength;
          controller.enqueue(chunk);
          if (left <= 0) {
            controller.close();
            await reader.cancel();
          }
        },
        cancel() {
          return reader.cancel();
        },
      });
    },
    async deleteBlob(repository, digest) {
      try {
        await Deno.remove(linkPath(repository, digest));
        return true;
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return false;
        throw error;
      }
    },
    async startUpload() {
      const temp = join(uploadsDir, crypto.randomUUID());
      await Deno.writeFile(temp, new Uint8Array(), { createNew: true });
      return uploadSession(temp, (digest) => commitBlob(temp, digest), link);
    },
    async getManifest(repository, reference) {
      const index = await readIndex(repository);
      const entry = index?.manifests.findLast((m) =>
        m.digest === reference ||
        m.annotations?.[REF_NAME_ANNOTATION] === reference
      );
      return entry === undefined ? undefined : await readManifest(entry);
    },
    async putManifest(repository, manifest, tag) {
      const path = blobPath(manifest.digest);
      if (!(await statOrUndefined(path))) {
        await writeFileAtomic(path, manifest.bytes);
      }
      await withIndex(repository, (index) => {
        const descriptor: Descriptor = {
          mediaType: manifest.mediaType,
          digest: manifest.digest,
          size: manifest.bytes.byteLength,
        };
        const others = index.manifests.filter((m) =>
          tag === undefined
            ? !(m.digest === manifest.digest &&
              !m.annotations?.[REF_NAME_ANNOTATION])
            : m.annotations?.[REF_NAME_ANNOTATION] !== tag
        );
        const entry = tag === undefined
          ? descriptor
          : { ...descriptor, annotations: { [REF_NAME_ANNOTATION]: tag } };
        return {
          index: { ...index, manifests: [...others, entry] },
          result: undefined,
        };
      });
    },
    async deleteManifest(repository, reference) {
      if ((await readIndex(repository)) === undefined) return false;
      return await withIndex(repository, (index) => {
        const isTag = index.manifests.some((m) =>
          m.annotations?.[REF_NAME_ANNOTATION] === reference
        );
        const manifests = index.manifests.filter((m) =>
          isTag
            ? m.annotations?.[REF_NAME_ANNOTATION] !== reference
            : m.digest !== reference
        );
        const removed = index.manifests.filter((m) => !manifests.includes(m));
        if (isTag) {
          // Untagging keeps the manifest reachable by digest.
          for (const entry of removed) {
            if (!manifests.some((m) => m.digest === entry.digest)) {
              const { annotations: _, ...descriptor } = entry;
              manifests.push(descriptor);
            }
          }
        }
        return { index: { ...index, manifests }, result: removed.length > 0 };
      });
    },
    async listTags(repository) {
      const index = await readIndex(repository);
      if (index === undefined) return undefined;
      return [
        ...new Set(
          index.manifests.flatMap((m) => {
            const name = m.annotations?.[REF_NAME_ANNOTATION];
            return name ? [name] : [];
          }),
        ),
      ].sort();
    },
    async listManifests(repository) {
      const index = await readIndex(repository);
      const seen = new Set<string>();
      const found: StoredManifest[] = [];
      for (const entry of index?.manifests ?? []) {
        if (seen.has(entry.digest)) continue;
        seen.add(entry.digest);
        const manifest = await readManifest(entry);
        if (manifest) found.push(manifest);
      }
      return found;
    },
  };
}

/**
 * An upload into a file that is opened only while a request appends to it: sessions left
 * unfinished hold no descriptor. An append that fails is undone (the file cut back, the hash
 * state restored), so a client may send the chunk again.
 */
function uploadSession(
  temp: string,
  commitBlob: (digest: string) => Promise<void>,
  link: (repository: string, digest: string) => Promise<void>,
): UploadSession {
  let hash = createHash("sha256");
  let size = 0;
  return {
    get size() {
      return size;
    },
    async append(stream) {
      const before = { size, hash: hash.copy() };
      try {
        await appendToFile(temp, size, stream, (chunk) => {
          hash.update(chunk);
          size += chunk.byteLength;
        });
      } catch (error) {
        size = before.size;
        hash = before.hash;
        await Deno.truncate(temp, before.size).catch(() => {});
        throw error;
      }
      return size;
    },
    digest() {
      return `sha256:${hash.copy().digest("hex")}`;
    },
    async commit(repository, digest) {
      // Every append synced what it wrote before it answered.
      await commitBlob(digest);
      await link(repository, digest);
    },
    async cancel() {
      await Deno.remove(temp).catch(() => {});
    },
  };
}

/**
 * Writes a stream at `offset` of a file, opened for this call only: 256 KiB reads (many
 * uploads run at once), each seen by `onChunk`, written while the next one fills, synced as
 * the file grows and at the end (through a second descriptor, so writes go on meanwhile).
 */
async function appendToFile(
  path: string,
  offset: number,
  stream: ReadableStream<Uint8Array>,
  onChunk: (chunk: Uint8Array) => void,
): Promise<void> {
  using file = await Deno.open(path, { write: true });
  using syncer = await Deno.open(path, { read: true });
  await file.seek(offset, Deno.SeekMode.Start);
  await writeStreamToFile(stream, file, {
    chunkSize: 256 << 10,
    sync: () => syncer.syncData(),
    onChunk,
  });
}
