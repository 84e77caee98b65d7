/**
 * `oci tags`: lists the tags of a repository on a registry, or of an existing OCI image
 * layout, in natural order (`v2` before `v10`).
 *
 * @module
 */
import { listTags } from "../store/remote/tags.ts";
import type { OciLayout } from "../store/layout_store.ts";
import { type Command, existingLayout } from "./command.ts";

const CHUNK = /\d+|\D+/g;

/**
 * Natural order: runs of digits compare as numbers (`v2` < `v10`, `1.9` < `1.10`), the rest
 * by code point; equal ones by code point of the whole text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { naturalCompare } from "./tags.ts";
 * assert.deepEqual(["v10", "v2", "latest", "v1.10", "v1.9"].sort(naturalCompare), ["latest", "v1.9", "v1.10", "v2", "v10"]);
 * ```
 */
export function naturalCompare(a: string, b: string): number {
  const x = a.match(CHUNK) ?? [];
  const y = b.match(CHUNK) ?? [];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const p = x[i];
    const q = y[i];
    if (p === q) continue;
    if (/^\d/.test(p) && /^\d/.test(q)) {
      const m = p.replace(/^0+(?=\d)/, "");
      const n = q.replace(/^0+(?=\d)/, "");
      if (m.length !== n.length) return m.length - n.length;
      if (m !== n) return m < n ? -1 : 1;
      continue;
    }
    return p < q ? -1 : 1;
  }
  if (x.length !== y.length) return x.length - y.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The `tags` command. */
export const tags: Command = {
  name: "tags",
  summary: "list the tags of a repository, in natural order",
  usage: "oci tags <ref>",
  examples: [
    "oci tags 127.0.0.1:5000/cache/app",
    "oci tags ghcr.io/org/app --json",
    "oci tags layout:./out",
  ],
  flags: {},
  positionals: 1,
  async run(context, [refText]) {
    const parsed = context.target(refText, "tags");
    const list = parsed.kind === "layout"
      ? await (await context.readStore(
        await existingLayout(parsed, "tags"),
        "tags",
      ) as OciLayout).listTags({ signal: context.signal })
      : await listTags(parsed.ref, {
        transport: context.transport,
        signal: context.signal,
        ...context.retry,
      });
    list.sort(naturalCompare);
    context.result(
      parsed.kind === "layout"
        ? { source: `layout:${parsed.dir}`, tags: list }
        : {
          source: `${parsed.ref.registry}/${parsed.ref.repository}`,
          repository: parsed.ref.repository,
          tags: list,
        },
      list.join("\n"),
    );
  },
};
