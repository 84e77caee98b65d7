/**
 * `oci discover`: lists what refers to an image (signatures, SBOMs, …) as a tree, referrers of
 * referrers under them; by the referrers API, or the fallback tag where there is none.
 *
 * @module
 */
import { type ReferrerNode, referrerTree } from "../image/referrers.ts";
import { referenceOf } from "./context.ts";
import { type Command, formatTarget } from "./command.ts";
import { describe } from "./output.ts";

interface NodeJson {
  digest: string;
  mediaType: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  referrers: NodeJson[];
}

function toJson(node: ReferrerNode): NodeJson {
  return {
    ...describe(node.descriptor),
    ...(node.descriptor.artifactType
      ? { artifactType: node.descriptor.artifactType }
      : {}),
    ...(node.descriptor.annotations
      ? { annotations: { ...node.descriptor.annotations } }
      : {}),
    referrers: node.referrers.map(toJson),
  };
}

/** The tree as text: one line per referrer, `├──`/`└──` under its subject. */
function treeLines(nodes: readonly ReferrerNode[], indent: string): string[] {
  return nodes.flatMap((node, i) => {
    const last = i === nodes.length - 1;
    const type = node.descriptor.artifactType ?? "(no artifact type)";
    return [
      `${indent}${last ? "└── " : "├── "}${type} ${node.descriptor.digest}`,
      ...treeLines(node.referrers, `${indent}${last ? "    " : "│   "}`),
    ];
  });
}

/** The `discover` command. */
export const discover: Command = {
  name: "discover",
  summary: "list the referrers of an image as a tree",
  usage: "oci discover <ref> [--artifact-type T]",
  examples: [
    "oci discover 127.0.0.1:5000/app:v1",
    "oci discover 127.0.0.1:5000/app:v1 --artifact-type application/spdx+json --json",
  ],
  flags: {
    "artifact-type": {
      type: "string",
      value: "T",
      description:
        "list only referrers of this type at the first level; theirs are all shown (default: every type)",
    },
  },
  positionals: 1,
  async run(context, [refText], values) {
    const target = context.target(refText, "discover");
    const store = await context.readStore(target, "discover");
    const subject = await store.resolve(referenceOf(target), {
      signal: context.signal,
    });
    const tree = await referrerTree(store, subject.digest, {
      artifactType: values["artifact-type"] as string | undefined,
      signal: context.signal,
    });
    const name = target.kind === "registry"
      ? `${target.ref.registry}/${target.ref.repository}@${subject.digest}`
      : `layout:${target.dir}@${subject.digest}`;
    context.result(
      {
        source: formatTarget(target),
        ...describe(subject),
        referrers: tree.map(toJson),
      },
      [name, ...treeLines(tree, "")].join("\n"),
    );
  },
};
