/**
 * `oci pull`: pulls an image (one platform of an index) from a registry or a layout and
 * extracts its layers into a directory, or writes an artifact's files there by title.
 *
 * @module
 */
import { pullImage } from "../image/pull.ts";
import { fetchBytes, fetchManifest, type Store } from "../store/store.ts";
import {
  DOCKER_CONFIG_MEDIA_TYPE,
  isIndexMediaType,
  OCI_CONFIG_MEDIA_TYPE,
} from "../oci/media_types.ts";
import type { ImageConfig, ImageManifest } from "../oci/manifest.ts";
import {
  formatPlatform,
  hostPlatform,
  matchPlatform,
  normalizePlatform,
  type Platform,
} from "../oci/platform.ts";
import { referenceOf } from "./context.ts";
import {
  type Command,
  existingLayout,
  formatTarget,
  platformFlag,
} from "./command.ts";
import { describe, platformJson } from "./output.ts";

/** A single-platform image is not of the platform `--platform` asked for (docker refuses it too). */
export class PlatformMismatchError extends Error {
  /**
   * Creates the error.
   *
   * @param image The image, for the message.
   * @param wanted The platform asked for.
   * @param actual The image's own.
   */
  constructor(image: string, wanted: Platform, actual: Platform) {
    super(
      `${image} is a single-platform image for ${formatPlatform(actual)}, not ${
        formatPlatform(normalizePlatform(wanted))
      } (--platform); add --force to pull it anyway`,
    );
    this.name = "PlatformMismatchError";
  }
}

function platformOf(config: ImageConfig): Platform {
  return normalizePlatform({
    os: config.os ?? "unknown",
    architecture: config.architecture ?? "unknown",
    ...(config.variant ? { variant: config.variant } : {}),
  });
}

const IMAGE_CONFIG_TYPES = [OCI_CONFIG_MEDIA_TYPE, DOCKER_CONFIG_MEDIA_TYPE];

/** The platform of the image a reference names when it is one image (not an index). */
async function singlePlatform(
  store: Store,
  reference: string,
  signal: AbortSignal,
): Promise<Platform | undefined> {
  const top = await fetchManifest(store, reference, { signal });
  if (isIndexMediaType(top.descriptor.mediaType)) return undefined;
  const config = (top.document as ImageManifest).config;
  // An artifact has no platform.
  if (!IMAGE_CONFIG_TYPES.includes(config.mediaType)) return undefined;
  const bytes = await fetchBytes(store, config, { signal });
  return platformOf(JSON.parse(new TextDecoder().decode(bytes)));
}

/** The `pull` command. */
export const pull: Command = {
  name: "pull",
  summary:
    "pull an image and extract its layers into a directory, or an artifact's files",
  usage: "oci pull <ref> <dir> [--platform P [--force]] [--cache DIR]",
  examples: [
    "oci pull 127.0.0.1:5000/cache/app:v1 ./rootfs",
    "oci pull ghcr.io/org/app:v2 ./rootfs --platform linux/arm64",
    "oci pull 127.0.0.1:5000/notes:v1 ./notes   # an artifact: its files by title",
  ],
  details:
    `An artifact (a config that is not an image config, an org.opencontainers.image.title on
every layer) is written file by file: each under its title in <dir>, streamed to a temporary
name, verified and renamed; a title that is absolute, has .. or a NUL, or whose parent is a
symlink is refused. A manifest that is neither an image nor such an artifact (spack's
index.spack) is refused: read its blobs with oci blob get.`,
  flags: {
    platform: {
      type: "string",
      value: "P",
      description:
        "the platform to take out of an index (default linux/<host architecture>); a single-platform image of another platform is refused unless --force",
    },
    force: {
      type: "boolean",
      description:
        "pull a single-platform image that is not of --platform, with a warning (default: refuse)",
    },
  },
  positionals: 2,
  async run(context, [refText, dir], values) {
    const parsed = context.target(refText, "pull");
    const platform = platformFlag(values.platform, "pull");
    const source = parsed.kind === "registry" ? parsed.ref : {
      store: await context.readStore(
        await existingLayout(parsed, "pull"),
        "pull",
      ),
      reference: parsed.reference,
    };
    const name = formatTarget(parsed);
    if (platform !== undefined) {
      // Checked before anything is written: docker refuses it too.
      const actual = await singlePlatform(
        await context.readStore(parsed, "pull"),
        referenceOf(parsed),
        context.signal,
      );
      if (actual !== undefined && !matchPlatform(platform, actual)) {
        const error = new PlatformMismatchError(name, platform, actual);
        if (!values.force) throw error;
        context.warn(
          `${name} is for ${formatPlatform(actual)}, not ${
            formatPlatform(normalizePlatform(platform))
          }: pulled anyway (--force)`,
        );
      }
    }
    const result = await pullImage(source, dir, {
      platform,
      cache: context.cache,
      transport: context.transport,
      signal: context.signal,
      concurrency: context.concurrency,
      ...context.retry,
      onBlob: (d, state, p) => context.progress.blob(d, state, p),
      onWarning: (m) => context.info(m),
    });
    context.progress.done();
    if (result.kind === "artifact") {
      context.result(
        {
          source: name,
          destination: dir,
          ...describe(result.descriptor),
          artifactType: result.manifest.artifactType ??
            result.manifest.config.mediaType,
          files: result.files.map((file) => ({
            title: file.title,
            ...describe(file.descriptor),
          })),
        },
        `Pulled ${result.descriptor.digest} into ${dir}: ${result.files.length} file${
          result.files.length === 1 ? "" : "s"
        }`,
      );
      return;
    }
    const pulled = platformOf(result.config);
    if (platform === undefined && !matchPlatform(hostPlatform(), pulled)) {
      // docker's warning: the image runs only where its platform does.
      context.warn(
        `the image's platform (${
          formatPlatform(pulled)
        }) does not match the default platform (${
          formatPlatform(hostPlatform())
        })`,
      );
    }
    context.result({
      source: name,
      destination: dir,
      ...describe(result.descriptor),
      platform: platformJson(pulled),
      layers: result.manifest.layers.length,
    }, `Pulled ${result.descriptor.digest} into ${dir}`);
  },
};
