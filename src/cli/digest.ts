/**
 * `oci digest`: prints the digest a registry (or layout) serves for a reference, or with
 * `--platform` the digest of that platform's manifest in an index.
 *
 * @module
 */
import { readManifestBytes } from "../image/manifest_bytes.ts";
import { referenceOf } from "./context.ts";
import { type Command, formatTarget, platformFlag } from "./command.ts";
import { describe } from "./output.ts";

/** The `digest` command. */
export const digest: Command = {
  name: "digest",
  summary: "print the digest of a manifest or index",
  usage: "oci digest <ref> [--platform P]",
  examples: [
    "oci digest 127.0.0.1:5000/app:v1",
    "oci digest ubuntu:24.04 --platform linux/arm64",
  ],
  flags: {
    platform: {
      type: "string",
      value: "P",
      description:
        "the digest of this platform's manifest in an index (default: what the reference names)",
    },
  },
  positionals: 1,
  async run(context, [refText], values) {
    const target = context.target(refText, "digest");
    const store = await context.readStore(target, "digest");
    const { descriptor } = await readManifestBytes(store, referenceOf(target), {
      platform: platformFlag(values.platform, "digest"),
      signal: context.signal,
    });
    context.result(
      { source: formatTarget(target), ...describe(descriptor) },
      descriptor.digest,
    );
  },
};
