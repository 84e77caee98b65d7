/**
 * `oci blob get`: a blob by digest (of a registry's `REPO@DIGEST` or a layout's
 * `layout:DIR@DIGEST`: any store that tells blob sizes) to a file (`-o`, written under a temporary name and renamed
 * once verified) or to stdout (verified while it streams: a mismatch fails the command);
 * `oci blob put`: a file as a blob, printing its digest.
 *
 * @module
 */
import { stat } from "node:fs/promises";
import { downloadBlob, findBlob, uploadFile } from "../image/blob.ts";
import { UsageError } from "./context.ts";
import { type Command, formatTarget } from "./command.ts";
import { describe } from "./output.ts";

/** The `blob` command. */
export const blob: Command = {
  name: "blob",
  summary: "get a blob by digest (verified), or put a file as a blob",
  usage: "oci blob get <ref@digest> [-o FILE] | oci blob put <repo> <file>",
  examples: [
    "oci blob get 127.0.0.1:5000/app@sha256:… -o layer.tar.gz",
    "oci blob get layout:./cache@sha256:… > manifest.json",
    "oci blob put 127.0.0.1:5000/app ./data.bin",
  ],
  flags: {
    output: {
      type: "string",
      short: "o",
      value: "FILE",
      description:
        "get: write the blob to FILE, renamed into place once verified (default: stdout)",
    },
  },
  positionals: 2,
  maxPositionals: 3,
  references: (args) => args.slice(1, 2),
  async run(context, [action, refText, file], values) {
    if (action === "get" && file === undefined) {
      const target = context.target(refText, "blob");
      const digest = target.kind === "layout"
        ? (/^[a-z0-9]+:/.test(target.reference) ? target.reference : undefined)
        : target.ref.digest;
      if (digest === undefined) {
        throw new UsageError(
          "blob get needs REPO@sha256:… or layout:DIR@sha256:…",
          "blob",
        );
      }
      const store = await context.readStore(target, "blob");
      const descriptor = await findBlob(store, digest, {
        signal: context.signal,
      });
      if (descriptor === undefined) {
        throw new Error(`Cannot find blob ${digest} in ${store.name}`);
      }
      const output = values.output as string | undefined;
      if (output !== undefined) {
        await downloadBlob(store, descriptor, output, {
          signal: context.signal,
        });
        context.progress.done();
        context.result({
          source: formatTarget(target),
          destination: output,
          ...describe(descriptor),
        }, "");
        return;
      }
      const stream = await store.fetch(descriptor, { signal: context.signal });
      await stream.pipeTo(Deno.stdout.writable, { preventClose: true });
      return;
    }
    if (action === "put" && file !== undefined) {
      if (values.output !== undefined) {
        throw new UsageError("-o is for blob get", "blob");
      }
      try {
        if (!(await stat(file)).isFile()) throw new Error();
      } catch {
        throw new UsageError(`"${file}" is not a file`, "blob");
      }
      const target = context.target(refText, "blob");
      const store = await context.store(target);
      const { descriptor, sent } = await uploadFile(store, file, {
        signal: context.signal,
      });
      context.progress.done();
      context.result({
        destination: formatTarget(target),
        ...describe(descriptor),
        copied: sent ? 1 : 0,
        existing: sent ? 0 : 1,
      }, descriptor.digest);
      return;
    }
    throw new UsageError(
      `use "blob get <ref@digest>" or "blob put <repo> <file>"`,
      "blob",
    );
  },
};
