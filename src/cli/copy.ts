/**
 * `oci copy`: copies an image between registries and OCI image layouts: the whole index,
 * keeping its digest (as crane, oras and regctl do), or one platform with `--platform`.
 *
 * @module
 */
import { copyGraph, copyImage } from "../image/copy.ts";
import { resolveImage } from "../image/resolve.ts";
import { copyReferrers } from "../image/referrers.ts";
import { copyAllTags } from "../image/copy_tags.ts";
import { copyAsOci } from "../image/convert.ts";
import type { Store, TagLister } from "../store/store.ts";
import type { ImageIndex } from "../oci/manifest.ts";
import { fetchManifest } from "../store/store.ts";
import { isIndexMediaType } from "../oci/media_types.ts";
import { formatPlatform } from "../oci/platform.ts";
import { referenceOf, type Target, UsageError } from "./context.ts";
import { type Command, formatTarget, platformFlag } from "./command.ts";
import {
  describe,
  formatPlatforms,
  indexPlatforms,
  platformJson,
} from "./output.ts";

/** The `copy` command. */
export const copy: Command = {
  name: "copy",
  summary: "copy an image between registries and OCI layouts",
  usage:
    "oci copy <src> <dst> [--platform P] [--referrers] [--all-tags] [--format oci]",
  examples: [
    "oci copy ghcr.io/org/app:v1 127.0.0.1:5000/mirror/app:v1",
    "oci copy ghcr.io/org/app:v1 layout:./cache:v1 --platform linux/arm64",
    "oci copy 127.0.0.1:5000/app:v1 ghcr.io/org/app:v1 -r",
    "oci copy 127.0.0.1:5000/cache ghcr.io/org/cache --all-tags",
    "oci copy docker.io/library/alpine:3 layout:./alpine:3 --format oci",
  ],
  details:
    `--format oci writes Docker v2s2 manifests and manifest lists as OCI manifests and indexes
(new digests, printed with the source's in the output and in --json as "converted"), their
configs and layers with the OCI media types that say the same (the same blobs and digests):
a layout written so is read by skopeo's and umoci's oci: transports. Images already OCI are
copied as they are.`,
  flags: {
    platform: {
      type: "string",
      value: "P",
      description:
        "copy only this platform's image out of an index: a new digest at the destination (default: the whole index, keeping its digest)",
    },
    all: {
      type: "boolean",
      description:
        "copy the whole index with every platform (the default; kept for scripts)",
    },
    referrers: {
      type: "boolean",
      short: "r",
      description:
        "also copy what refers to the image (signatures, SBOMs), recursively (default: the image only)",
    },
    "all-tags": {
      type: "boolean",
      description:
        "copy every tag of the source repository, several at once, skipping tags whose digest the destination has; a line per tag (default: one reference)",
    },
    format: {
      type: "string",
      value: "F",
      description:
        "oci: convert Docker-format manifests, lists and configs to OCI media types (new digests) (default: copy as they are)",
    },
  },
  positionals: 2,
  async run(context, [srcText, dstText], values) {
    if (values.all && values.platform !== undefined) {
      throw new UsageError("use --platform or --all, not both", "copy");
    }
    const platform = platformFlag(values.platform, "copy");
    const format = values.format as string | undefined;
    if (format !== undefined && format !== "oci") {
      throw new UsageError(
        `--format takes oci (the one conversion), got "${format}"`,
        "copy",
      );
    }
    if (format !== undefined && (values.referrers || values["all-tags"])) {
      throw new UsageError(
        "--format oci gives new digests, which referrers do not name: no --referrers or --all-tags with it",
        "copy",
      );
    }
    const src = context.target(srcText, "copy");
    const dst = context.target(dstText, "copy");
    if (values["all-tags"]) {
      if (platform !== undefined) {
        throw new UsageError(
          "--all-tags copies whole indexes: no --platform",
          "copy",
        );
      }
      await copyEveryTag(
        context,
        await context.readStore(src, "copy") as Store & TagLister,
        await context.store(dst),
        { source: src, destination: dst, referrers: Boolean(values.referrers) },
      );
      return;
    }
    const reference = referenceOf(src);
    const dstReference = dst.kind === "layout"
      ? dst.reference
      : dst.ref.tag ?? (reference.includes(":") ? undefined : reference);
    const source = await context.readStore(src, "copy");
    const target = await context.store(dst);
    const options = {
      concurrency: context.concurrency,
      tag: dstReference,
      ...context.retry,
      log: (line: string) => context.info(line),
      onBlob: context.progress.blob,
      signal: context.signal,
    };
    let result;
    let narrowed: Record<string, unknown> = {};
    if (format === "oci") {
      const root = platform === undefined
        ? await source.resolve(reference, { signal: context.signal })
        : (await resolveImage(source, reference, {
          ...context.retry,
          platform,
          signal: context.signal,
        })).manifest.descriptor;
      const oci = await copyAsOci(source, target, root, options);
      result = oci;
      for (const c of oci.converted) {
        context.info(
          `Converted ${c.sourceMediaType} ${c.source} to ${c.descriptor.mediaType} ${c.descriptor.digest}`,
        );
      }
      narrowed = {
        format: "oci",
        sourceDigest: root.digest,
        converted: oci.converted.map((c) => ({
          source: c.source,
          sourceMediaType: c.sourceMediaType,
          ...describe(c.descriptor),
        })),
      };
    } else if (platform === undefined) {
      result = await copyImage(source, target, reference, {
        ...options,
        platform: "all",
      });
      if (isIndexMediaType(result.descriptor.mediaType)) {
        const top = await fetchManifest(source, result.descriptor.digest, {
          signal: context.signal,
        });
        const platforms = indexPlatforms(
          (top.document as ImageIndex).manifests,
        );
        narrowed = { platforms: platforms.map(platformJson) };
        context.info(
          `Copied index ${result.descriptor.digest} with ${platforms.length} platform${
            platforms.length === 1 ? "" : "s"
          } (${formatPlatforms(platforms)})`,
        );
      }
    } else {
      const { manifest, index } = await resolveImage(source, reference, {
        ...context.retry,
        platform,
        signal: context.signal,
      });
      result = await copyGraph(source, target, manifest.descriptor, options);
      const platforms = index
        ? indexPlatforms((index.document as ImageIndex).manifests)
        : [];
      const chosen = index
        ? (index.document as ImageIndex).manifests.find((m) =>
          m.digest === manifest.descriptor.digest
        )?.platform
        : undefined;
      narrowed = {
        ...(chosen ? { platform: platformJson(chosen) } : {}),
        ...(index ? { sourcePlatforms: platforms.map(platformJson) } : {}),
      };
      if (index) {
        context.info(
          `Copied 1 of ${platforms.length} platforms (${
            formatPlatform(chosen ?? platform)
          }): ${manifest.descriptor.digest}; the index ${index.descriptor.digest} is not copied`,
        );
      }
    }
    if (values.referrers) {
      const { referrers } = await copyReferrers(
        source,
        target,
        result.descriptor,
        options,
      );
      narrowed = { ...narrowed, referrers: referrers.map(describe) };
      context.info(
        `Copied ${referrers.length} referrer${
          referrers.length === 1 ? "" : "s"
        }`,
      );
    }
    context.progress.done();
    context.result({
      source: formatTarget(src),
      destination: formatTarget(dst),
      ...describe(result.descriptor),
      ...narrowed,
      copied: result.blobsCopied - result.blobsMounted,
      mounted: result.blobsMounted,
      existing: result.blobsSkipped,
    }, result.descriptor.digest);
  },
};

/** `copy --all-tags`: every tag, a line per tag; fails (exit 1) when any tag failed. */
async function copyEveryTag(
  context: Parameters<Command["run"]>[0],
  source: Store & TagLister,
  target: Store,
  options: { source: Target; destination: Target; referrers: boolean },
): Promise<void> {
  const results = await copyAllTags(source, target, {
    concurrency: context.concurrency,
    referrers: options.referrers,
    ...context.retry,
    signal: context.signal,
    onTag: (r) =>
      context.info(
        r.status === "failed"
          ? `${r.tag}: failed: ${(r.error as Error)?.message ?? r.error}`
          : `${r.tag}: ${r.status} ${r.digest}`,
      ),
  });
  context.progress.done();
  const failed = results.filter((r) => r.status === "failed");
  if (failed.length > 0) {
    throw new Error(
      `Cannot copy ${failed.length} of ${results.length} tags: ${
        failed.map((r) => `${r.tag}: ${(r.error as Error)?.message ?? r.error}`)
          .join("; ")
      }`,
    );
  }
  context.result(
    {
      source: formatTarget(options.source).replace(/:[^:/]*$/, ""),
      destination: formatTarget(options.destination).replace(/:[^:/]*$/, ""),
      tags: results.map((r) => ({
        tag: r.tag,
        status: r.status,
        digest: r.digest,
        copied: r.blobsCopied,
      })),
    },
    results.map((r) => `${r.tag} ${r.status} ${r.digest}`).join("\n"),
  );
}
