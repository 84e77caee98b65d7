/**
 * The embedded registry's repositories, over the same stores as the rest of the code: one
 * content-addressed store holds every blob (`memoryStore()`, or the blob directory under
 * `--root`), each repository keeps its manifests and tags in a store of its own (a
 * `memoryStore()`, or an OCI image layout `ROOT/<name>/` whose `blobs` links to the shared
 * `ROOT/.blobs`), and links say which blobs a repository may read (pushed or mounted there).
 * A {@linkcode Repository} is a {@linkcode Store} with the capabilities the server needs.
 *
 * On disk, names map to paths without collisions by construction: a name's components can
 * never be a layout's own entries (`blobs`, `index.json`, `oci-layout`, refused by
 * `checkRepositoryName`) nor start with a dot, so everything the registry keeps for itself
 * lives under dot-names no name can spell: `ROOT/.blobs`, `ROOT/.uploads`, and the
 * per-repository links under `ROOT/.links/<repo>/.digests/`. A nested repository
 * (`team/app/x` beside `team/app`) is a subdirectory of the other's layout that readers of that
 * layout ignore. So `skopeo copy oci:ROOT/team/app:v1 …` and `umoci unpack --image
 * ROOT/team/app:v1` read what the server stores.
 *
 * @module
 */
import { join } from "node:path";
import type { Descriptor } from "../oci/manifest.ts";
import { statOrUndefined } from "../io/files.ts";
import {
  type BlobReader,
  type Deleter,
  isManifestOrIndex,
  type Mounter,
  type ReferrerLister,
  type Store,
  type TagLister,
  type Uploader,
} from "../store/store.ts";
import { memoryStore, type MemoryStoreOptions } from "../store/memory_store.ts";
import { OciLayout, openLayout } from "../store/layout_store.ts";
import { UPLOADED_MEDIA_TYPE } from "../store/uploads.ts";
import { type BlobLinks, markerLinks, memoryLinks } from "./blob_links.ts";
import { checkRepositoryName } from "./repository_name.ts";

/** The store that keeps one repository's manifests and tags. */
export type ManifestStore = Store & TagLister & Deleter & ReferrerLister;

/** The store that keeps every repository's blobs. */
export type BlobStore = Store & BlobReader & Uploader;

/**
 * One repository: its manifests and tags, and the blobs linked to it. Blobs pushed, uploaded
 * or mounted here are linked; a blob of another repository is not found here. `listTags`
 * throws `NotFound` for a repository no manifest was ever pushed to.
 */
export interface Repository
  extends
    Store,
    TagLister,
    Deleter,
    ReferrerLister,
    BlobReader,
    Uploader,
    Mounter {
  /** The repository's name. */
  readonly repository: string;
}

/** The repositories of one registry. */
export interface Repositories {
  /** A name for messages: `memory`, or the directory. */
  readonly name: string;
  /** Every blob of every repository (for tests and tools; repositories see their own). */
  readonly blobs: BlobStore;
  /**
   * A repository by name (whether or not anything was pushed to it yet).
   *
   * @throws {RepositoryNameError} When the name is refused.
   */
  get(name: string): Repository;
  /** The names of the repositories that hold manifests (pushed at least once), sorted. */
  list(): Promise<string[]>;
}

/** What {@linkcode repositoriesOver} builds repositories from. */
export interface RepositoryParts {
  /** A name for messages. */
  readonly name: string;
  /** The store of every blob. */
  readonly blobs: BlobStore;
  /** Which blobs each repository may read. */
  readonly links: BlobLinks;
  /**
   * The manifest store of a repository: made when `create` (on the first manifest pushed),
   * otherwise undefined when there is none yet.
   */
  manifests(
    name: string,
    create: boolean,
  ): Promise<ManifestStore | undefined>;
  /** The names of the repositories that have a manifest store. */
  names(): Promise<string[]>;
}

/**
 * Repositories over a blob store, links and a manifest store per repository.
 *
 * @param parts The stores and links.
 * @returns The repositories.
 *
 * @example A blob pushed to one repository is not in another until mounted there
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryRepositories } from "./repositories.ts";
 * import { bytesSource } from "../transport/request_body.ts";
 * import { digestOf } from "../oci/digest.ts";
 * const repositories = memoryRepositories();
 * const blob = { mediaType: "application/octet-stream", digest: digestOf("x"), size: 1 };
 * const a = repositories.get("a");
 * const b = repositories.get("b");
 * await a.push(blob, bytesSource("x"));
 * assert.ok(await a.exists(blob));
 * assert.ok(!(await b.exists(blob)));
 * assert.ok(await b.mount(blob, a));
 * assert.equal(await b.blobSize(blob.digest), 1);
 * ```
 */
export function repositoriesOver(parts: RepositoryParts): Repositories {
  const { blobs, links } = parts;
  // Marks this registry's repositories (copies made by spreading one keep it).
  const ours = Symbol(parts.name);
  const sourceOf = (store: Store) =>
    (store as Partial<Record<typeof ours, string>>)[ours];
  const notFound = (what: string, name: string) =>
    new Deno.errors.NotFound(
      `Cannot find ${what} in repository ${name} of ${parts.name}`,
    );
  const linked = (name: string, digest: string) => links.has(name, digest);

  function get(name: string): Repository {
    checkRepositoryName(name);
    const manifests = (create = false) => parts.manifests(name, create);
    const repository: Repository & Record<typeof ours, string> = {
      [ours]: name,
      name: `${parts.name}/${name}`,
      repository: name,
      async exists(descriptor, options) {
        if (isManifestOrIndex(descriptor.mediaType)) {
          return await (await manifests())?.exists(descriptor, options) ??
            false;
        }
        return await linked(name, descriptor.digest) &&
          await blobs.exists(descriptor, options);
      },
      async fetch(descriptor, options) {
        if (isManifestOrIndex(descriptor.mediaType)) {
          const store = await manifests();
          if (store === undefined) throw notFound(descriptor.digest, name);
          return await store.fetch(descriptor, options);
        }
        if (!(await linked(name, descriptor.digest))) {
          throw notFound(`blob ${descriptor.digest}`, name);
        }
        return await blobs.fetch(descriptor, options);
      },
      async push(descriptor, source, options) {
        if (isManifestOrIndex(descriptor.mediaType)) {
          await (await manifests(true))!.push(descriptor, source, options);
          return;
        }
        await blobs.push(descriptor, source, options);
        await links.add(name, descriptor.digest);
      },
      async resolve(reference, options) {
        const store = await manifests();
        if (store === undefined) throw notFound(`"${reference}"`, name);
        return await store.resolve(reference, options);
      },
      async listTags(options) {
        const store = await manifests();
        if (store === undefined) throw notFound("tags", name);
        return await store.listTags(options);
      },
      async delete(descriptor, options) {
        if (isManifestOrIndex(descriptor.mediaType)) {
          return await (await manifests())?.delete(descriptor, options) ??
            false;
        }
        // The bytes stay: other repositories may link them.
        return await links.remove(name, descriptor.digest);
      },
      async untag(tag, options) {
        return await (await manifests())?.untag(tag, options) ?? false;
      },
      async referrers(subject, options) {
        return await (await manifests())?.referrers(subject, options) ?? [];
      },
      async blobSize(digest, options) {
        if (!(await linked(name, digest))) return undefined;
        return await blobs.blobSize(digest, options);
      },
      async readBlob(digest, options) {
        if (!(await linked(name, digest))) {
          throw notFound(`blob ${digest}`, name);
        }
        return await blobs.readBlob(digest, options);
      },
      async startUpload(options) {
        const upload = await blobs.startUpload(options);
        return {
          get size() {
            return upload.size;
          },
          append: (stream, declared) => upload.append(stream, declared),
          digest: () => upload.digest(),
          async commit(digest, call) {
            const descriptor = await upload.commit(digest, call);
            await links.add(name, digest);
            return descriptor;
          },
          cancel: () => upload.cancel(),
        };
      },
      canMount(from) {
        return sourceOf(from) !== undefined;
      },
      async mount(descriptor, from, options) {
        const source = sourceOf(from);
        if (
          source !== undefined && await linked(source, descriptor.digest) &&
          (await blobs.blobSize(descriptor.digest, options)) !== undefined
        ) {
          await links.add(name, descriptor.digest);
          return true;
        }
        if (options?.fallback === undefined) return false;
        await repository.push(descriptor, options.fallback, options);
        return false;
      },
    };
    return repository;
  }

  const list = async () => (await parts.names()).sort();
  return { name: parts.name, blobs, get, list };
}

/**
 * Repositories in memory: one `memoryStore()` of every blob, and one per repository for its
 * manifests and tags.
 *
 * @param options The room unfinished uploads may take together (`maxUploadBytes`, 1 GiB).
 * @returns The repositories.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryRepositories } from "./repositories.ts";
 * const repositories = memoryRepositories({ maxUploadBytes: 4 });
 * const upload = await repositories.get("app").startUpload();
 * await assert.rejects(upload.append(new Response("hello").body!), /4 bytes/);
 * assert.equal(upload.size, 0);
 * ```
 */
export function memoryRepositories(
  options: MemoryStoreOptions = {},
): Repositories {
  const stores = new Map<string, ManifestStore>();
  return repositoriesOver({
    name: "memory",
    blobs: memoryStore(options),
    links: memoryLinks(),
    manifests(name, create) {
      let store = stores.get(name);
      if (store === undefined && create) {
        stores.set(name, store = memoryStore());
      }
      return Promise.resolve(store);
    },
    names: () => Promise.resolve([...stores.keys()]),
  });
}

/**
 * Repositories on disk under `root`: one OCI image layout per repository (`ROOT/team/app/`
 * with `oci-layout` and `index.json`, whose `blobs` links to the shared `ROOT/.blobs`),
 * uploads in `ROOT/.uploads`, links under `ROOT/.links`. Blobs and `index.json` are written as
 * every layout's are: to a temporary file, verified, synced, renamed, the directory synced.
 *
 * @param root The directory (created when missing).
 * @returns The repositories.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layoutRepositories } from "./repositories.ts";
 * const root = await Deno.makeTempDir();
 * const repositories = await layoutRepositories(root);
 * await assert.rejects(repositories.get("app").listTags(), Deno.errors.NotFound);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function layoutRepositories(root: string): Promise<Repositories> {
  const shared = join(root, ".blobs");
  await Deno.mkdir(join(shared, "sha256"), { recursive: true });
  await Deno.mkdir(join(root, ".uploads"), { recursive: true });
  // The root is no layout itself (no index.json): this one is used for its blobs and uploads
  // only, `ROOT/.blobs` and `ROOT/.uploads`.
  const blobs = new OciLayout(root, { blobs: shared });
  const layouts = new Map<string, Promise<OciLayout>>();
  return repositoriesOver({
    name: root,
    blobs: {
      name: `oci:${shared}`,
      exists: (descriptor, options) => blobs.exists(descriptor, options),
      fetch: (descriptor, options) => blobs.fetch(descriptor, options),
      push: (descriptor, source, options) =>
        blobs.push(descriptor, source, options),
      resolve: (reference) =>
        Promise.reject(
          new Deno.errors.NotFound(
            `Cannot resolve "${reference}" in the blobs of ${root}: manifests are per repository`,
          ),
        ),
      blobSize: (digest, options) => blobs.blobSize(digest, options),
      readBlob: (digest, options) => blobs.readBlob(digest, options),
      startUpload: (options) => blobs.startUpload(options),
    },
    links: markerLinks(root),
    async manifests(name, create) {
      const known = layouts.get(name);
      if (known !== undefined) return await known;
      const dir = join(root, ...name.split("/"));
      if (!create && !(await statOrUndefined(join(dir, "index.json")))) {
        return undefined;
      }
      // One layout per repository, so that its index.json updates queue on one lock.
      const opened = layouts.get(name);
      if (opened !== undefined) return await opened;
      const opening = openLayout(dir, { blobs: shared });
      layouts.set(name, opening);
      opening.catch(() => layouts.delete(name));
      return await opening;
    },
    names: () => layoutNames(root),
  });
}

/**
 * The repositories under a root: every directory with an `index.json`, nested ones too, outside
 * the dot-names the registry keeps for itself and the layouts' own `blobs`.
 */
async function layoutNames(root: string): Promise<string[]> {
  const names: string[] = [];
  const walk = async (dir: string, prefix: string[]) => {
    for await (const entry of Deno.readDir(dir)) {
      if (
        !entry.isDirectory || entry.name.startsWith(".") ||
        entry.name === "blobs"
      ) continue;
      const path = join(dir, entry.name);
      const name = [...prefix, entry.name];
      if (await statOrUndefined(join(path, "index.json"))) {
        names.push(name.join("/"));
      }
      await walk(path, name);
    }
  };
  await walk(root, []);
  return names;
}

/**
 * The descriptor of a blob known only by digest and size (what the registry's blob endpoints
 * know), for the {@linkcode Store} calls of a {@linkcode Repository}.
 *
 * @param digest The digest.
 * @param size The size.
 * @returns A blob descriptor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { blobDescriptor } from "./repositories.ts";
 * assert.equal(blobDescriptor("sha256:00", 1).mediaType, "application/octet-stream");
 * ```
 */
export function blobDescriptor(digest: string, size: number): Descriptor {
  return { mediaType: UPLOADED_MEDIA_TYPE, digest, size };
}
