/**
 * `oci inspect`: prints the manifest a reference resolves to (for a platform), its config
 * with `--config`, or the top manifest or index as stored with `--index`, as JSON.
 *
 * @module
 */
import { fetchManifest } from "../store/store.ts";
import { resolveImage } from "../image/copy.ts";
import { isIndexMediaType } from "../oci/media_types.ts";
import type { ImageManifest } from "../oci/manifest.ts";
import { referenceOf } from "./context.ts";
import { type Command, platformFlag } from "./command.ts";

/** The `inspect` command. */
export const inspect: Command = {
  name: "inspect",
  summary: "print the resolved manifest (or config) as JSON",
  usage: "oci inspect <ref> [--platform P] [--config] [--index]",
  examples: [
    "oci inspect 127.0.0.1:5000/cache/app:v1",
    "oci inspect ubuntu:24.04 --platform linux/arm64 --config",
  ],
  flags: {
    platform: { type: "string" },
    config: { type: "boolean" },
    index: { type: "boolean" },
  },
  positionals: 1,
  async run(context, [refText], values) {
    const target = context.target(refText, "inspect");
    const store = await context.store(target);
    const reference = referenceOf(target);
    if (values.index) {
      const top = await fetchManifest(store, reference);
      const text = JSON.stringify(top.document, null, 2);
      context.result(top.document, text);
      return;
    }
    const { manifest, index } = await resolveImage(
      store,
      reference,
      platformFlag(values.platform, "inspect"),
    );
    if (values.config) {
      const descriptor = (manifest.document as ImageManifest).config;
      const config = JSON.parse(
        await new Response(await store.fetch(descriptor)).text(),
      );
      context.result(config, JSON.stringify(config, null, 2));
      return;
    }
    if (index && isIndexMediaType(index.descriptor.mediaType)) {
      context.info(
        `Resolved index ${index.descriptor.digest} to ${manifest.descriptor.digest}`,
      );
    }
    context.result(
      manifest.document,
      JSON.stringify(manifest.document, null, 2),
    );
  },
};
