/**
 * `oci attach`: pushes an artifact that refers to an image (its `subject`): each file one layer
 * with its media type and title, the empty config, `--artifact-type` set. On a registry without
 * the referrers API (distribution 2.8) the subject's fallback tag `sha256-<hex>` is updated.
 *
 * @module
 */
import { stat } from "node:fs/promises";
import { parseArtifactFile } from "../image/artifact.ts";
import { attachArtifact } from "../image/referrers.ts";
import { referenceOf, UsageError } from "./context.ts";
import { annotationsFlag } from "./annotations.ts";
import { type Command, formatTarget } from "./command.ts";
import { describe } from "./output.ts";

/** The `attach` command. */
export const attach: Command = {
  name: "attach",
  summary:
    "attach an artifact (signature, SBOM, notes) to an image as a referrer",
  usage:
    "oci attach <subject> <file[:mediatype]>... --artifact-type T [--annotation K=V]...",
  examples: [
    "oci attach 127.0.0.1:5000/app:v1 sbom.json:application/spdx+json --artifact-type application/spdx+json",
    "oci attach 127.0.0.1:5000/app@sha256:… sig.txt --artifact-type application/vnd.example.sig",
  ],
  details:
    `The registry's referrers API lists what is attached; where there is none (distribution 2.8
answers 404) the index under the tag sha256-<hex of the subject> is read, extended and written
back, as the distribution spec says: two clients attaching to one subject at once race, and the
last write wins (attach again to put a lost entry back).`,
  flags: {
    "artifact-type": {
      type: "string",
      value: "T",
      description:
        "the artifact's type, e.g. application/spdx+json (required: no default)",
    },
    annotation: {
      type: "string",
      value: "K=V",
      multiple: true,
      description:
        "an annotation on the artifact's manifest, repeatable (default: none)",
    },
  },
  positionals: 2,
  maxPositionals: Infinity,
  references: (args) => args.slice(0, 1),
  async run(context, [subjectText, ...fileTexts], values) {
    const artifactType = values["artifact-type"] as string | undefined;
    if (artifactType === undefined) {
      throw new UsageError("--artifact-type is required", "attach");
    }
    const annotations = annotationsFlag(values.annotation, "attach");
    const files = fileTexts.map(parseArtifactFile);
    for (const file of files) {
      try {
        if (!(await stat(file.path)).isFile()) throw new Error();
      } catch {
        throw new UsageError(`"${file.path}" is not a file`, "attach");
      }
    }
    const target = context.target(subjectText, "attach");
    const store = await context.store(target);
    const { descriptor, subject } = await attachArtifact(
      store,
      referenceOf(target),
      files,
      { artifactType, annotations, signal: context.signal },
    );
    context.info(
      `Attached ${artifactType} ${descriptor.digest} to ${subject.digest}`,
    );
    context.result({
      destination: formatTarget(target),
      ...describe(descriptor),
      artifactType,
      subject: describe(subject),
    }, descriptor.digest);
  },
};
