/**
 * `oci tags`: lists the tags of a repository on a registry, or of an existing OCI image
 * layout.
 *
 * @module
 */
import { layoutStore } from "../store/layout_store.ts";
import { listTags } from "../store/remote/tags.ts";
import { type Command, existingLayout } from "./command.ts";

/** The `tags` command. */
export const tags: Command = {
  name: "tags",
  summary: "list the tags of a repository",
  usage: "oci tags <ref>",
  examples: [
    "oci tags 127.0.0.1:5000/cache/app",
    "oci tags ghcr.io/org/app --json",
  ],
  flags: {},
  positionals: 1,
  async run(context, [refText]) {
    const parsed = context.target(refText, "tags");
    const list = parsed.kind === "layout"
      ? await (await layoutStore(
        (await existingLayout(parsed, "tags")).dir,
      )).listTags({ signal: context.signal })
      : await listTags(parsed.ref, {
        transport: context.transport,
        signal: context.signal,
        ...context.retry,
      });
    context.result({ tags: list }, list.join("\n"));
  },
};
