/**
 * `oci inspect`: describes what a reference names — an index (its platforms) or an image
 * (platform, created, layers with sizes) — for people, as one JSON object with `--json`, or as
 * the exact bytes served with `--raw`; `--platform` descends an index, `--config` shows the
 * image config. Nothing is written, not even to a layout.
 *
 * @module
 */
import { fetchBytes } from "../store/store.ts";
import type { FetchedManifest, Store } from "../store/store.ts";
import { readManifest, resolveImage } from "../image/resolve.ts";
import { isIndexMediaType } from "../oci/media_types.ts";
import type {
  ImageConfig,
  ImageIndex,
  ImageManifest,
} from "../oci/manifest.ts";
import {
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  type Platform,
} from "../oci/platform.ts";
import { referenceOf, UsageError } from "./context.ts";
import { type Command, formatTarget, platformFlag } from "./command.ts";
import { describe, platformJson } from "./output.ts";
import { formatSize } from "../io/size.ts";

/** Config media types that are image configs (an artifact's config is something else). */
const IMAGE_CONFIG_TYPES = new Set([
  "application/vnd.oci.image.config.v1+json",
  "application/vnd.docker.container.image.v1+json",
]);

/** Writes all of `bytes` to stdout, as they are. */
function writeRaw(bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.byteLength) {
    written += Deno.stdout.writeSync(bytes.subarray(written));
  }
}

async function readImageConfig(
  store: Store,
  manifest: ImageManifest,
  signal: AbortSignal,
): Promise<{ bytes: Uint8Array; config?: ImageConfig }> {
  const bytes = await fetchBytes(store, manifest.config, { signal });
  let config: ImageConfig | undefined;
  try {
    config = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    config = undefined;
  }
  return { bytes, config };
}

function platformOfConfig(config: ImageConfig): Platform {
  return normalizePlatform({
    os: config.os,
    architecture: config.architecture,
    ...(config.variant ? { variant: config.variant } : {}),
  });
}

/** The human lines of an index. */
function indexLines(index: ImageIndex): string[] {
  const rows = index.manifests.map((m) => [
    m.platform ? formatPlatform(m.platform) : (m.artifactType ?? "-"),
    m.digest,
    formatSize(m.size),
  ]);
  const width = Math.max(0, ...rows.map((r) => r[0].length));
  return [
    `Platforms:   ${index.manifests.length}`,
    ...rows.map(([p, d, s]) => `  ${p.padEnd(width)}  ${d}  ${s}`),
  ];
}

/** The human lines of an image manifest. */
function manifestLines(
  manifest: ImageManifest,
  config: ImageConfig | undefined,
): string[] {
  const lines: string[] = [];
  if (config?.os !== undefined) {
    lines.push(`Platform:    ${formatPlatform(platformOfConfig(config))}`);
  }
  if (config?.created !== undefined) {
    lines.push(`Created:     ${config.created}`);
  }
  if (manifest.artifactType !== undefined) {
    lines.push(`Artifact:    ${manifest.artifactType}`);
  }
  const total = manifest.layers.reduce((sum, l) => sum + l.size, 0);
  lines.push(
    `Layers:      ${manifest.layers.length} (${formatSize(total)})`,
    ...manifest.layers.map((l) =>
      `  ${l.digest}  ${formatSize(l.size).padStart(9)}  ${l.mediaType}`
    ),
  );
  return lines;
}

/** The `inspect` command. */
export const inspect: Command = {
  name: "inspect",
  summary:
    "describe an image or index: digest, media type, platforms or layers",
  usage:
    "oci inspect <ref> [--platform P] [--config] [--index] [--raw | --json]",
  examples: [
    "oci inspect 127.0.0.1:5000/cache/app:v1",
    "oci inspect ubuntu:24.04 --platform linux/arm64 --config",
    "oci inspect ghcr.io/org/app:v1 --raw | sha256sum   # the digest",
  ],
  details:
    `Without --json or --raw, a summary: reference, digest, media type, and an index's platforms
or an image's platform, created time and layers with sizes. With --raw or --config, the digest
and media type go to stderr.`,
  flags: {
    platform: {
      type: "string",
      value: "P",
      description:
        "descend an index to this platform's image (default: describe what the reference names; --config picks linux/<host architecture>)",
    },
    config: {
      type: "boolean",
      description: "print the image config (JSON) instead of the manifest",
    },
    index: {
      type: "boolean",
      description:
        "describe the manifest or index the reference names even with --platform (the default without --platform)",
    },
    raw: {
      type: "boolean",
      description:
        "print the exact bytes the registry or layout served, which hash to the digest (default: a summary)",
    },
  },
  positionals: 1,
  async run(context, [refText], values) {
    if (values.raw && context.flags.json) {
      throw new UsageError("use --raw or --json, not both", "inspect");
    }
    const platform = platformFlag(values.platform, "inspect");
    const target = context.target(refText, "inspect");
    const store = await context.readStore(target, "inspect");
    const reference = referenceOf(target);
    const { signal } = context;
    let chosen: FetchedManifest = await readManifest(store, reference, {
      ...context.retry,
      signal,
    });
    let index: FetchedManifest | undefined;
    const wantsImage = values.config || (platform && !values.index);
    if (wantsImage && isIndexMediaType(chosen.descriptor.mediaType)) {
      const resolved = await resolveImage(store, reference, {
        platform: platform ?? hostPlatform(),
        ...context.retry,
        signal,
      });
      index = resolved.index;
      chosen = resolved.manifest;
    }
    const source = formatTarget(target);
    const { descriptor } = chosen;
    const isIndex = isIndexMediaType(descriptor.mediaType);
    const identity = `${descriptor.digest} ${descriptor.mediaType}`;

    if (values.config) {
      const manifest = chosen.document as ImageManifest;
      const { bytes, config } = await readImageConfig(store, manifest, signal);
      if (values.raw) {
        context.info(`${manifest.config.digest} ${manifest.config.mediaType}`);
        writeRaw(bytes);
        return;
      }
      context.info(`config of ${identity}: ${manifest.config.digest}`);
      context.result(
        {
          source,
          ...describe(descriptor),
          configDescriptor: describe(manifest.config),
          config,
        },
        JSON.stringify(config, null, 2),
      );
      return;
    }
    if (values.raw) {
      context.info(identity);
      writeRaw(chosen.bytes);
      return;
    }

    let lines: string[];
    let json: Record<string, unknown>;
    if (isIndex) {
      const document = chosen.document as ImageIndex;
      lines = indexLines(document);
      json = {
        platforms: document.manifests.flatMap((m) =>
          m.platform ? [platformJson(m.platform)] : []
        ),
        manifests: document.manifests.map((m) => ({
          ...describe(m),
          ...(m.platform ? { platform: platformJson(m.platform) } : {}),
        })),
      };
    } else {
      const document = chosen.document as ImageManifest;
      const config = IMAGE_CONFIG_TYPES.has(document.config.mediaType)
        ? (await readImageConfig(store, document, signal)).config
        : undefined;
      lines = manifestLines(document, config);
      json = {
        ...(config?.os !== undefined
          ? { platform: platformJson(platformOfConfig(config)) }
          : {}),
        ...(config?.created !== undefined ? { created: config.created } : {}),
        layers: document.layers.map(describe),
      };
    }
    const header = [
      `Reference:   ${source}`,
      ...(index
        ? [
          `Index:       ${index.descriptor.digest} (${
            (index.document as ImageIndex).manifests.length
          } entries)`,
        ]
        : []),
      `Digest:      ${descriptor.digest}`,
      `Media type:  ${descriptor.mediaType}`,
      `Size:        ${formatSize(descriptor.size)}`,
    ];
    context.result(
      {
        source,
        ...describe(descriptor),
        ...(index ? { index: describe(index.descriptor) } : {}),
        ...json,
        manifest: chosen.document,
      },
      [...header, ...lines].join("\n"),
    );
  },
};
