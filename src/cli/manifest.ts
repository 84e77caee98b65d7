/**
 * `oci manifest get`: the exact bytes of a manifest or index (a platform's with `--platform`);
 * `oci manifest put`: stores a manifest from a file, checked first, its media type the
 * document's own.
 *
 * @module
 */
import {
  putManifestBytes,
  readManifestBytes,
} from "../image/manifest_bytes.ts";
import { MAX_MANIFEST_SIZE } from "../oci/parse_manifest.ts";
import { referenceOf, UsageError } from "./context.ts";
import { type Command, formatTarget, platformFlag } from "./command.ts";
import { describe } from "./output.ts";

/** The `manifest` command. */
export const manifest: Command = {
  name: "manifest",
  summary: "get a manifest's exact bytes, or put one from a file",
  usage:
    "oci manifest get <ref> [--platform P] | oci manifest put <ref> <file>",
  examples: [
    "oci manifest get 127.0.0.1:5000/app:v1 > manifest.json",
    "oci manifest put 127.0.0.1:5000/app:v2 manifest.json",
  ],
  details:
    `get prints the bytes as served (they hash to the digest; with --json, the digest and the
document). put checks the file as a manifest or index, sends it with the media type its
mediaType names, and needs what it points to in the repository already.`,
  flags: {
    platform: {
      type: "string",
      value: "P",
      description:
        "get: the manifest of this platform out of an index (default: what the reference names)",
    },
  },
  positionals: 2,
  maxPositionals: 3,
  references: (args) => args.slice(1, 2),
  async run(context, [action, refText, file], values) {
    if (action === "get" && file === undefined) {
      const target = context.target(refText, "manifest");
      const store = await context.readStore(target, "manifest");
      const fetched = await readManifestBytes(store, referenceOf(target), {
        platform: platformFlag(values.platform, "manifest"),
        signal: context.signal,
      });
      if (context.flags.json) {
        context.result({
          source: formatTarget(target),
          ...describe(fetched.descriptor),
          manifest: fetched.document,
        }, "");
      } else {
        await Deno.stdout.write(fetched.bytes);
      }
      return;
    }
    if (action === "put" && file !== undefined) {
      if (values.platform !== undefined) {
        throw new UsageError("--platform is for manifest get", "manifest");
      }
      const target = context.target(refText, "manifest");
      let bytes: Uint8Array;
      try {
        const info = await Deno.stat(file);
        if (info.size > MAX_MANIFEST_SIZE) {
          throw new UsageError(
            `"${file}" is larger than the ${MAX_MANIFEST_SIZE} bytes a manifest may have`,
            "manifest",
          );
        }
        bytes = await Deno.readFile(file);
      } catch (error) {
        if (error instanceof UsageError) throw error;
        throw new UsageError(`cannot read "${file}"`, "manifest");
      }
      const store = target.kind === "layout"
        ? await context.readStore(target, "manifest")
        : await context.store(target);
      const descriptor = await putManifestBytes(
        store,
        referenceOf(target),
        bytes,
        { signal: context.signal },
      );
      context.result(
        { destination: formatTarget(target), ...describe(descriptor) },
        descriptor.digest,
      );
      return;
    }
    throw new UsageError(
      `use "manifest get <ref>" or "manifest put <ref> <file>"`,
      "manifest",
    );
  },
};
