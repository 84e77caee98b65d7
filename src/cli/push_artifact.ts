/**
 * `oci push REF FILE[:MEDIATYPE]... --artifact-type T`: an artifact as oras pushes one, each
 * file a layer with its media type and title, the empty config unless `--config`, then the
 * extra tags.
 *
 * @module
 */
import { stat } from "node:fs/promises";
import {
  parseArtifactFile,
  pushArtifact,
  TITLE_ANNOTATION,
} from "../image/artifact.ts";
import { tagManifest } from "../image/tag.ts";
import { type CommandContext, UsageError } from "./context.ts";
import { annotationsFlag } from "./annotations.ts";
import { formatTarget } from "./command.ts";
import { describe } from "./output.ts";
import { splitTags } from "./tags_flag.ts";

/** The image push's flags, which an artifact push refuses rather than ignores. */
const IMAGE_FLAGS = ["base", "platform", "compression", "created"] as const;

async function requireFile(path: string): Promise<void> {
  try {
    if ((await stat(path)).isFile()) return;
  } catch {
    // Named below.
  }
  throw new UsageError(`"${path}" is not a file`, "push");
}

/**
 * Runs an artifact push: `args` are the reference and the files.
 *
 * @param context The command's context.
 * @param args The reference, then each `FILE[:MEDIATYPE]`.
 * @param values The flags.
 */
export async function runArtifactPush(
  context: CommandContext,
  [refText, ...fileTexts]: string[],
  values: Record<string, unknown>,
): Promise<void> {
  const artifactType = String(values["artifact-type"]);
  for (const name of IMAGE_FLAGS) {
    if (values[name] !== undefined) {
      throw new UsageError(
        `--${name} is for an image push, not with --artifact-type`,
        "push",
      );
    }
  }
  const annotations = annotationsFlag(values.annotation, "push");
  const files = fileTexts.map(parseArtifactFile);
  for (const file of files) await requireFile(file.path);
  const config = values.config === undefined
    ? undefined
    : parseArtifactFile(String(values.config));
  if (config !== undefined) await requireFile(config.path);
  const { text, extra } = splitTags(
    refText,
    (values.tag as string[] | undefined) ?? [],
    "push",
  );
  const target = context.target(text, "push");
  if (target.kind === "registry" && target.ref.digest !== undefined) {
    throw new UsageError(
      "push names a tag, not a digest: the digest is the manifest's",
      "push",
    );
  }
  const tag = target.kind === "layout"
    ? target.reference
    : target.ref.tag ?? "latest";
  const store = await context.store(target);
  const { descriptor, manifest } = await pushArtifact(store, files, {
    artifactType,
    annotations,
    config,
    tag,
    signal: context.signal,
  });
  if (extra.length > 0) {
    await tagManifest(store, descriptor.digest, extra, {
      signal: context.signal,
    });
  }
  const tags = [tag, ...extra];
  context.info(
    `Pushed ${artifactType} ${descriptor.digest} as ${tags.join(", ")}`,
  );
  context.result({
    destination: formatTarget(target),
    ...describe(descriptor),
    artifactType,
    tags,
    config: describe(manifest.config),
    layers: files.length === 0 ? [] : manifest.layers.map((layer) => ({
      ...describe(layer),
      title: layer.annotations?.[TITLE_ANNOTATION],
    })),
  }, descriptor.digest);
}
