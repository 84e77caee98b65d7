/**
 * `oci delete`: removes a tag (the manifest stays, by digest), a manifest by digest (with every
 * tag on it), or a blob with `--blob`, from a registry or an OCI image layout. A registry that
 * refuses says why (deletes turned off: 405 `UNSUPPORTED`; distribution 2.8 deletes no tags).
 *
 * @module
 */
import type { Deleter, Store } from "../store/store.ts";
import { UsageError } from "./context.ts";
import { type Command, formatTarget } from "./command.ts";

function isDeleter(store: Store): store is Store & Deleter {
  return typeof (store as Partial<Deleter>).delete === "function";
}

/** The `delete` command. */
export const deleteCommand: Command = {
  name: "delete",
  summary: "delete a tag, a manifest (by digest) or a blob (--blob)",
  usage: "oci delete <ref> [--blob]",
  examples: [
    "oci delete 127.0.0.1:5000/app:old",
    "oci delete 127.0.0.1:5000/app@sha256:…",
    "oci delete 127.0.0.1:5000/app@sha256:… --blob",
  ],
  details:
    `A tag deletes the tag only; a digest deletes the manifest and every tag on it. Distribution
deletes only with storage.delete.enabled: true, and never a tag alone (delete the digest).`,
  flags: {
    blob: {
      type: "boolean",
      description:
        "the digest names a blob, not a manifest (default: a manifest)",
    },
  },
  positionals: 1,
  async run(context, [refText], values) {
    const target = context.target(refText, "delete");
    const digest = target.kind === "registry"
      ? target.ref.digest
      : /^[a-z0-9]+:[0-9a-f]+$/.test(target.reference)
      ? target.reference
      : undefined;
    const tag = target.kind === "registry"
      ? target.ref.tag
      : digest === undefined
      ? target.reference
      : undefined;
    if (values.blob && digest === undefined) {
      throw new UsageError(
        "--blob needs a reference by digest (REPO@sha256:…)",
        "delete",
      );
    }
    const store = target.kind === "layout"
      ? await context.readStore(target, "delete")
      : await context.store(target);
    if (!isDeleter(store)) {
      throw new Error(`Cannot delete from ${store.name}: it does not delete`);
    }
    const call = { signal: context.signal };
    let what: "blob" | "manifest" | "tag";
    let deleted: boolean;
    if (values.blob) {
      what = "blob";
      deleted = await store.delete(
        { mediaType: "application/octet-stream", digest: digest!, size: 0 },
        call,
      );
    } else if (digest !== undefined) {
      what = "manifest";
      const descriptor = await store.resolve(digest, call);
      deleted = await store.delete(descriptor, call);
    } else {
      what = "tag";
      deleted = await store.untag(tag!, call);
    }
    const name = `${what} ${digest ?? tag}`;
    if (!deleted) {
      throw new Error(
        `Cannot delete ${name} of ${store.name}: it is not there`,
      );
    }
    context.info(`Deleted ${name} of ${store.name}`);
    context.result({
      destination: formatTarget(target),
      deleted: what,
      ...(digest !== undefined ? { digest } : { tag }),
    }, `Deleted ${name}`);
  },
};
