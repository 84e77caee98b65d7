/**
 * `oci tag`: names an image by more tags, putting the same manifest bytes under each (no blob
 * moves), on a registry or in an OCI image layout.
 *
 * @module
 */
import { tagManifest } from "../image/tag.ts";
import { referenceOf } from "./context.ts";
import { checkTag } from "./tags_flag.ts";
import { type Command, formatTarget } from "./command.ts";
import { describe } from "./output.ts";

/** The `tag` command. */
export const tag: Command = {
  name: "tag",
  summary: "add tags to an image (the same manifest, no blob moved)",
  usage: "oci tag <ref> <tag>...",
  examples: [
    "oci tag 127.0.0.1:5000/app:v1.2.3 v1.2 v1 latest",
    "oci tag layout:./out:v1 stable",
  ],
  flags: {},
  positionals: 2,
  maxPositionals: Infinity,
  references: (args) => args.slice(0, 1),
  async run(context, [refText, ...tags]) {
    for (const name of tags) checkTag(name, "tag");
    const target = context.target(refText, "tag");
    const store = target.kind === "layout"
      ? await context.readStore(target, "tag")
      : await context.store(target);
    const descriptor = await tagManifest(store, referenceOf(target), tags, {
      signal: context.signal,
    });
    context.info(`Tagged ${descriptor.digest} as ${tags.join(", ")}`);
    context.result(
      { source: formatTarget(target), ...describe(descriptor), tags },
      descriptor.digest,
    );
  },
};
