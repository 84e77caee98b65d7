/**
 * Registry storage on disk as OCI image layouts: one layout per repository (`ROOT/<repo>/` with
 * `oci-layout` and `index.json`), whose `blobs` is a link to one shared, content-addressed
 * `ROOT/.blobs`. So `skopeo copy oci:ROOT/team/app:v1 …` and `umoci unpack --image
 * ROOT/team/app:v1` read what the server stores. Every write goes to a temporary file, is
 * verified, then renamed; `index.json` updates are serialised and atomic.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import { parseDigest } from "../reference/digest.ts";
import { REF_NAME_ANNOTATION } from "../layout/layout.ts";
import {
  statOrUndefined,
  writeFileAtomic,
  writeStreamToFile,
} from "../layout/files.ts";
import type { Descriptor, ImageIndex } from "../image/manifest.ts";
import { OCI_INDEX_MEDIA_TYPE } from "../image/media_types.ts";
import type {
  RegistryStorage,
  StoredManifest,
  UploadSession,
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

  /** A marker file per blob a repository may read (pushed or mounted there). */
  function linkPath(repository: string, digest: string): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(root, ".links", ...repository.split("/"), algorithm, encoded);
  }

  async function link(repository: string, digest: string): Promise<void> {
    const path = linkPath(repository, digest);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await Deno.writeFile(path, new Uint8Array());
  }

  function repositoryDir(repository: string): string {
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
      const file = await Deno.open(temp, { write: true, createNew: true });
      const hash = createHash("sha256");
      let size = 0;
      let closed = false;
      const close = () => {
        if (!closed) {
          closed = true;
          file.close();
        }
      };
      const session: UploadSession = {
        get size() {
          return size;
        },
        async append(stream) {
          // 256 KiB reads (many uploads run at once), hashed as they are read, written while
          // the next one fills, synced as the file grows (through a second descriptor).
          using syncer = await Deno.open(temp, { read: true });
          await writeStreamToFile(stream, file, {
            chunkSize: 256 << 10,
            sync: () => syncer.syncData(),
            onChunk: (chunk) => {
              hash.update(chunk);
              size += chunk.byteLength;
            },
          });
          return size;
        },
        digest() {
          return `sha256:${hash.copy().digest("hex")}`;
        },
        async commit(repository, digest) {
          await file.syncData();
          close();
          await commitBlob(temp, digest);
          await link(repository, digest);
        },
        async cancel() {
          close();
          await Deno.remove(temp).catch(() => {});
        },
      };
      return session;
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
