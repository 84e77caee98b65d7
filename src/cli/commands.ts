/**
 * The CLI's commands: push, pull, copy, inspect, tags. Each has its flags, its help with
 * examples, and a function that runs it in a {@linkcode CommandContext}.
 *
 * @module
 */
import { fetchManifest } from "../store/store.ts";
import { stat } from "node:fs/promises";
import { formatReference } from "../oci/reference.ts";
import { parsePlatform, type Platform } from "../oci/platform.ts";
import { layoutStore, openLayout } from "../store/layout_store.ts";
import { createLayer } from "../layer/create_layer.ts";
import { checkPushAccess, pushImage } from "../image/push.ts";
import { pullImage } from "../image/pull.ts";
import { copyImage, resolveImage } from "../image/copy.ts";
import { listTags } from "../store/remote/tags.ts";
import { isIndexMediaType } from "../oci/media_types.ts";
import { serveRegistry } from "../server/serve.ts";
import type { RegistryAuthOptions } from "../server/auth.ts";
import type { ImageManifest } from "../oci/manifest.ts";
import {
  type CommandContext,
  referenceOf,
  type Target,
  UsageError,
} from "./context.ts";

/** One command: its flags, help, positional arguments and what it does. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly examples: readonly string[];
  readonly flags: Record<
    string,
    { type: "string" | "boolean"; multiple?: boolean; default?: boolean }
  >;
  readonly positionals: number;
  run(
    context: CommandContext,
    args: string[],
    values: Record<string, unknown>,
  ): Promise<void>;
}

function platformFlag(
  value: unknown,
  command: string,
): Platform | undefined {
  if (value === undefined) return undefined;
  try {
    return parsePlatform(String(value));
  } catch (error) {
    throw new UsageError((error as Error).message, command);
  }
}

/** A target as the user wrote it, for results. */
function formatTarget(target: Target): string {
  return target.kind === "registry"
    ? formatReference(target.ref)
    : `layout:${target.dir}:${target.reference}`;
}

/** A layout target that must already be a layout (reading it must not create one). */
async function existingLayout(
  target: Target & { kind: "layout" },
  command: string,
): Promise<Target & { kind: "layout" }> {
  try {
    await stat(`${target.dir}/index.json`);
  } catch {
    throw new UsageError(
      `"${target.dir}" is not an OCI image layout (no index.json)`,
      command,
    );
  }
  return target;
}

function registryTarget(target: Target, command: string) {
  if (target.kind !== "registry") {
    throw new UsageError(
      `${command} needs a registry reference, not a layout`,
      command,
    );
  }
  return target.ref;
}

const push: Command = {
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

const pull: Command = {
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

const copy: Command = {
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

const inspect: Command = {
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

const tags: Command = {
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

const serve: Command = {
  name: "serve",
  summary: "run the embedded registry until Ctrl-C",
  usage:
    "oci serve [--port N] [--hostname H] [--root DIR] [--auth FILE [--token]]",
  examples: [
    "oci serve --port 5000",
    "oci serve --port 5000 --root ./registry   # content kept as OCI image layouts",
    "oci serve --auth users.txt --token        # users.txt: user:{PBKDF2}… lines; Bearer tokens from /token",
  ],
  flags: {
    port: { type: "string" },
    hostname: { type: "string" },
    root: { type: "string" },
    auth: { type: "string" },
    token: { type: "boolean" },
  },
  positionals: 0,
  async run(context, _args, values) {
    const port = values.port === undefined ? 5000 : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new UsageError(
        `--port must be 0..65535, got "${values.port}"`,
        "serve",
      );
    }
    let auth: RegistryAuthOptions | undefined;
    if (values.auth !== undefined) {
      const users: Record<string, string> = {};
      const text = await Deno.readTextFile(String(values.auth));
      for (const line of text.split("\n").map((l) => l.trim())) {
        if (line === "" || line.startsWith("#")) continue;
        const colon = line.indexOf(":");
        if (colon <= 0) {
          throw new UsageError(
            `${values.auth}: every line must be user:{PBKDF2}…, {SHA}… or {PLAIN}…`,
            "serve",
          );
        }
        users[line.slice(0, colon)] = line.slice(colon + 1);
      }
      auth = { users, ...(values.token ? { token: {} } : {}) };
    } else if (values.token) {
      throw new UsageError("--token needs --auth FILE", "serve");
    }
    const server = await serveRegistry({
      auth,
      port,
      hostname: values.hostname === undefined
        ? "127.0.0.1"
        : String(values.hostname),
      root: values.root === undefined ? undefined : String(values.root),
      signal: context.signal,
    });
    context.result(
      { url: server.url, host: server.host, root: values.root ?? null },
      `Serving an OCI registry at ${server.url}${
        values.root === undefined
          ? " (in memory)"
          : ` (layouts in ${values.root})`
      }; Ctrl-C stops it`,
    );
    await new Promise<void>((resolve) => {
      if (context.signal.aborted) resolve();
      context.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await server.shutdown().catch(() => {});
  },
};

/** Every command, by name. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  push,
  pull,
  copy,
  inspect,
  tags,
  serve,
};
