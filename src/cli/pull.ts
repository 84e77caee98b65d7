/**
 * `oci pull`: pulls an image (one platform of an index) from a registry or a layout and
 * extracts its layers into a directory.
 *
 * @module
 */
import { pullImage } from "../image/pull.ts";
import {
  type Command,
  existingLayout,
  formatTarget,
  platformFlag,
} from "./command.ts";

/** The `pull` command. */
export const pull: Command = {
  name: "pull",
  summary: "pull an image and extract its layers into a directory",
  usage: "oci pull <ref> <dir> [--platform P] [--cache DIR]",
  examples: [
    "oci pull 127.0.0.1:5000/cache/app:v1 ./rootfs",
    "oci pull ghcr.io/org/app:v2 ./rootfs --platform linux/arm64",
  ],
  flags: { platform: { type: "string" } },
  positionals: 2,
  async run(context, [refText, dir], values) {
    const parsed = context.target(refText, "pull");
    const source = parsed.kind === "registry" ? parsed.ref : {
      store: await context.store(await existingLayout(parsed, "pull")),
      reference: parsed.reference,
    };
    const result = await pullImage(source, dir, {
      platform: platformFlag(values.platform, "pull"),
      cache: context.cache,
      transport: context.transport,
      signal: context.signal,
      ...context.retry,
      onProgress: (p) => context.progress.update(p),
      onWarning: (m) => context.info(m),
    });
    context.progress.done();
    context.result({
      reference: formatTarget(parsed),
      digest: result.descriptor.digest,
      platform: {
        os: result.config.os,
        architecture: result.config.architecture,
        ...(result.config.variant ? { variant: result.config.variant } : {}),
      },
      layers: result.manifest.layers.length,
      directory: dir,
    }, `Pulled ${result.descriptor.digest} into ${dir}`);
  },
};
