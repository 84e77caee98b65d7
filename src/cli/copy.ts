/**
 * `oci copy`: copies an image (one platform, or every platform with `--all`) between
 * registries and OCI image layouts.
 *
 * @module
 */
import { copyImage } from "../image/copy.ts";
import { referenceOf, UsageError } from "./context.ts";
import { type Command, platformFlag } from "./command.ts";

/** The `copy` command. */
export const copy: Command = {
  name: "copy",
  summary: "copy an image between registries and OCI layouts",
  usage: "oci copy <src> <dst> [--platform P | --all]",
  examples: [
    "oci copy ghcr.io/org/app:v1 127.0.0.1:5000/mirror/app:v1 --all",
    "oci copy 127.0.0.1:5000/app:v1 layout:./cache:v1",
  ],
  flags: { platform: { type: "string" }, all: { type: "boolean" } },
  positionals: 2,
  async run(context, [srcText, dstText], values) {
    if (values.all && values.platform !== undefined) {
      throw new UsageError("use --platform or --all, not both", "copy");
    }
    const src = context.target(srcText, "copy");
    const dst = context.target(dstText, "copy");
    const reference = referenceOf(src);
    const dstReference = dst.kind === "layout"
      ? dst.reference
      : dst.ref.tag ?? (reference.includes(":") ? undefined : reference);
    const result = await copyImage(
      await context.store(src),
      await context.store(dst),
      reference,
      {
        platform: values.all ? "all" : platformFlag(values.platform, "copy"),
        concurrency: context.concurrency,
        tag: dstReference,
        ...context.retry,
        log: (line) => context.info(line),
        signal: context.signal,
      },
    );
    context.progress.done();
    context.result({
      digest: result.descriptor.digest,
      mediaType: result.descriptor.mediaType,
      blobsCopied: result.blobsCopied,
      blobsSkipped: result.blobsSkipped,
    }, result.descriptor.digest);
  },
};
