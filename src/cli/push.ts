/**
 * `oci push`: packs a directory or file as one layer (staged in the cache layout) and pushes
 * an image of it, on a base image or none, to a registry or a layout; with `--artifact-type`,
 * pushes files as an artifact instead (push_artifact.ts).
 *
 * @module
 */
import { stat } from "node:fs/promises";
import { openLayout } from "../store/layout_store.ts";
import { createLayer } from "../layer/create_layer.ts";
import { type Compression, COMPRESSIONS } from "../layer/compression.ts";
import { checkPushAccess, pushImage } from "../image/push.ts";
import { hostPlatform, normalizePlatform } from "../oci/platform.ts";
import { UsageError } from "./context.ts";
import {
  type Command,
  formatTarget,
  platformFlag,
  registryTarget,
} from "./command.ts";
import { describe, platformJson } from "./output.ts";
import { formatSize } from "../io/size.ts";
import { runArtifactPush } from "./push_artifact.ts";
import { splitTags } from "./tags_flag.ts";
import { tagManifest } from "../image/tag.ts";

/**
 * Reads `--created`: an RFC 3339 time (`2024-05-01T12:00:00Z`) or seconds since 1970, as the
 * config's `created` (whole seconds, UTC).
 *
 * @param text The flag's value.
 * @returns The time in RFC 3339, or undefined without the flag.
 * @throws {UsageError} When it is neither.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCreated } from "./push.ts";
 * assert.equal(parseCreated("0"), "1970-01-01T00:00:00Z");
 * assert.equal(parseCreated("2024-05-01T14:00:00+02:00"), "2024-05-01T12:00:00Z");
 * assert.throws(() => parseCreated("yesterday"));
 * ```
 */
export function parseCreated(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const date = /^\d+$/.test(text)
    ? new Date(Number(text) * 1000)
    : /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(
        text,
      )
    ? new Date(text)
    : undefined;
  if (date === undefined || Number.isNaN(date.getTime())) {
    throw new UsageError(
      `--created needs an RFC 3339 time (2024-05-01T12:00:00Z) or seconds since 1970, got "${text}"`,
      "push",
    );
  }
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * Reads `--compression`: gzip, zstd or none (gzip without the flag).
 *
 * @param value The flag's value.
 * @returns The compression.
 * @throws {UsageError} For anything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compressionFlag } from "./push.ts";
 * assert.equal(compressionFlag(undefined), "gzip");
 * assert.equal(compressionFlag("zstd"), "zstd");
 * assert.throws(() => compressionFlag("xz"), /gzip, zstd or none/);
 * ```
 */
export function compressionFlag(value: unknown): Compression {
  if (value === undefined) return "gzip";
  const found = COMPRESSIONS.find((c) => c === value);
  if (found === undefined) {
    throw new UsageError(
      `--compression is gzip, zstd or none, got "${value}"`,
      "push",
    );
  }
  return found;
}

/** The `push` command. */
export const push: Command = {
  name: "push",
  summary:
    "pack a directory or file as a layer and push an image, or push files as an artifact",
  usage:
    "oci push <path> <ref> [--base REF] [--platform OS/ARCH[/VARIANT]] [--compression gzip|zstd|none] [--annotation K=V]... [--created TIME] [--tag T]... | oci push <ref> <file[:mediatype]>... --artifact-type T [--config FILE[:MT]] [--annotation K=V]... [--tag T]...",
  examples: [
    "oci push ./prefix 127.0.0.1:5000/cache/app:v1",
    "oci push ./prefix 127.0.0.1:5000/cache/app:v1.2.3,v1.2,latest",
    "oci push 127.0.0.1:5000/notes:v1 notes.md:text/markdown --artifact-type application/vnd.example.notes",
    "oci push ./prefix ghcr.io/org/app:v2 --base ubuntu:24.04 --platform linux/arm64",
    "oci push ./prefix layout:./out:v1 --compression zstd",
    "SOURCE_DATE_EPOCH=0 oci push ./prefix layout:./out:v1   # twice: one digest",
  ],
  details:
    `Timestamps: every file in the layer gets the time $SOURCE_DATE_EPOCH, else 0 (1970), and
entries are sorted and owned by 0:0, so one tree always packs to one layer digest. The image's
created time (config and the org.opencontainers.image.created annotation) is --created, else
$SOURCE_DATE_EPOCH, else now: set one of them and two pushes of one tree give one image digest.

Image or artifact: with --artifact-type the push is an artifact (as oras pushes one) and the
reference comes first, then the files: each file is one layer with its media type (after the
last colon when it looks like type/subtype, else application/octet-stream) and its name as the
org.opencontainers.image.title annotation; the config is the empty one
(application/vnd.oci.empty.v1+json, {}) unless --config; --base, --platform, --compression and
--created are refused. Without --artifact-type it is an image push: a path, then the reference.
Tags: REF:a,b,c pushes to a and adds b and c (the same manifest), as --tag b --tag c does.`,
  flags: {
    base: {
      type: "string",
      value: "REF",
      description:
        "build on this image: its layers (mounted or copied to the target registry), config and platform are kept (default: none, an image of the one layer)",
    },
    platform: {
      type: "string",
      value: "P",
      description:
        "os/architecture[/variant] of the image, and the platform taken out of a --base index (default: the base's, else linux/<host architecture>)",
    },
    compression: {
      type: "string",
      value: "C",
      description:
        "how the layer is compressed: gzip (level 6), zstd (level 3, as zstd -3) or none; the manifest lists the matching layer media type (default gzip)",
    },
    annotation: {
      type: "string",
      value: "K=V",
      multiple: true,
      description:
        "an annotation on the manifest, repeatable (default: only org.opencontainers.image.created, and the base's name and digest with --base)",
    },
    "artifact-type": {
      type: "string",
      value: "T",
      description:
        "push the files as an artifact of this type, the reference first (default: an image push of one path)",
    },
    config: {
      type: "string",
      value: "FILE[:MT]",
      description:
        "an artifact's config file and media type (default: the empty config {}, application/vnd.oci.empty.v1+json; a FILE without :MT is application/vnd.unknown.config.v1+json)",
    },
    tag: {
      type: "string",
      value: "T",
      multiple: true,
      description:
        "another tag for the pushed manifest, repeatable (default: only the reference's tag)",
    },
    created: {
      type: "string",
      value: "TIME",
      description:
        "the image's created time: RFC 3339 (2024-05-01T12:00:00Z) or seconds since 1970 (default $SOURCE_DATE_EPOCH, else now)",
    },
  },
  positionals: 1,
  maxPositionals: Infinity,
  // The reference is the second argument of an image push and the first of an artifact push.
  references: (args) => args.slice(0, 2),
  async run(context, args, values) {
    if (values["artifact-type"] !== undefined) {
      return await runArtifactPush(context, args, values);
    }
    if (values.config !== undefined) {
      throw new UsageError(
        "--config goes with --artifact-type (an artifact push)",
        "push",
      );
    }
    if (args.length !== 2) {
      throw new UsageError(
        `push takes 2 arguments, got ${args.length}: a path and a reference (files are pushed as an artifact with --artifact-type, the reference first)`,
        "push",
      );
    }
    const [path, fullRef] = args;
    const { text: refText, extra } = splitTags(
      fullRef,
      (values.tag as string[] | undefined) ?? [],
      "push",
    );
    const parsed = context.target(refText, "push");
    const target = parsed.kind === "registry" ? parsed.ref : undefined;
    const base = values.base === undefined
      ? undefined
      : registryTarget(context.target(String(values.base), "push"), "push");
    const platform = platformFlag(values.platform, "push");
    const created = parseCreated(values.created as string | undefined);
    const compression = compressionFlag(values.compression);
    const annotations: Record<string, string> = {};
    for (const pair of (values.annotation as string[] | undefined) ?? []) {
      const eq = pair.indexOf("=");
      if (eq <= 0) {
        throw new UsageError(
          `--annotation needs KEY=VALUE, got "${pair}"`,
          "push",
        );
      }
      annotations[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    try {
      await stat(path);
    } catch {
      throw new UsageError(`"${path}" does not exist`, "push");
    }
    // A wrong host, a refused login or a denied push shows before a large directory is packed.
    if (target !== undefined) {
      await checkPushAccess(target, {
        transport: context.transport,
        signal: context.signal,
      });
    }
    const stage = await openLayout(context.cache);
    const layer = await createLayer(path, stage, {
      compression,
      onWarning: (m) => context.info(m),
      onProgress: (p) => context.progress.pack(p),
      signal: context.signal,
    });
    context.progress.pack(undefined);
    context.info(
      `Packed ${path}: ${layer.compressedDigest} (${formatSize(layer.size)})`,
    );
    const descriptor = await pushImage(
      parsed.kind === "registry"
        ? parsed.ref
        : { store: await context.store(parsed), tag: parsed.reference },
      {
        layers: [layer],
        base,
        platform,
        annotations,
        created,
        transport: context.transport,
        signal: context.signal,
        concurrency: context.concurrency,
        ...context.retry,
        // The display tells of each blob (one line per blob): no "Uploaded …" log line too.
        onBlob: (d, state, p) => context.progress.blob(d, state, p),
      },
    );
    context.progress.done();
    if (extra.length > 0) {
      await tagManifest(await context.store(parsed), descriptor.digest, extra, {
        signal: context.signal,
      });
      context.info(`Tagged ${descriptor.digest} as ${extra.join(", ")}`);
    }
    // Without a base the platform is known here; a base's comes from its config.
    const written = platform ??
      (base === undefined ? hostPlatform() : undefined);
    context.result({
      source: path,
      destination: formatTarget(parsed),
      ...describe(descriptor),
      tags: [
        parsed.kind === "layout"
          ? parsed.reference
          : parsed.ref.tag ?? parsed.ref.digest ?? "latest",
        ...extra,
      ],
      ...(written
        ? { platform: platformJson(normalizePlatform(written)) }
        : {}),
      layer: {
        digest: layer.compressedDigest,
        diffId: layer.uncompressedDigest,
        size: layer.size,
        mediaType: layer.mediaType,
      },
    }, descriptor.digest);
  },
};
