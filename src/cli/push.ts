/**
 * `oci push`: packs a directory or file as one layer (staged in the cache layout) and pushes
 * an image of it, on a base image or none, to a registry or a layout.
 *
 * @module
 */
import { stat } from "node:fs/promises";
import { openLayout } from "../store/layout_store.ts";
import { createLayer } from "../layer/create_layer.ts";
import { checkPushAccess, pushImage } from "../image/push.ts";
import { UsageError } from "./context.ts";
import {
  type Command,
  formatTarget,
  platformFlag,
  registryTarget,
} from "./command.ts";

/** The `push` command. */
export const push: Command = {
  name: "push",
  summary: "pack a directory or file as a layer and push an image",
  usage:
    "oci push <path> <ref> [--base REF] [--platform OS/ARCH[/VARIANT]] [--annotation K=V]...",
  examples: [
    "oci push ./prefix 127.0.0.1:5000/cache/app:v1",
    "oci push ./prefix ghcr.io/org/app:v2 --base ubuntu:24.04 --platform linux/arm64",
  ],
  flags: {
    base: { type: "string" },
    platform: { type: "string" },
    annotation: { type: "string", multiple: true },
  },
  positionals: 2,
  async run(context, [path, refText], values) {
    const parsed = context.target(refText, "push");
    const target = parsed.kind === "registry" ? parsed.ref : undefined;
    const base = values.base === undefined
      ? undefined
      : registryTarget(context.target(String(values.base), "push"), "push");
    const platform = platformFlag(values.platform, "push");
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
      onWarning: (m) => context.info(m),
      signal: context.signal,
    });
    context.info(
      `Packed ${path}: ${layer.compressedDigest} (${layer.size} bytes)`,
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
        transport: context.transport,
        signal: context.signal,
        ...context.retry,
        onProgress: (p) => context.progress.update(p),
        log: (line) => context.info(line),
      },
    );
    context.progress.done();
    context.result({
      reference: formatTarget(parsed),
      digest: descriptor.digest,
      size: descriptor.size,
      mediaType: descriptor.mediaType,
      layer: {
        digest: layer.compressedDigest,
        diffId: layer.uncompressedDigest,
        size: layer.size,
      },
    }, descriptor.digest);
  },
};
