/**
 * Several tags in one push: `REF:a,b,c` (the first names the push, the rest are added) and
 * repeated `--tag`, checked as tags before anything is sent.
 *
 * @module
 */
import { UsageError } from "./context.ts";

/** What a tag may be: up to 128 letters, digits, `_ . -`, not starting with `.` or `-`. */
export const TAG_REGEXP = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** A tag that is not one is a usage error of `command`. */
export function checkTag(name: string, command: string): void {
  if (!TAG_REGEXP.test(name)) {
    throw new UsageError(
      `"${name}" is not a tag: up to 128 letters, digits, _ . -, not starting with . or -`,
      command,
    );
  }
}

/**
 * Splits `REF:a,b,c` into the reference with its first tag (`REF:a`) and the other tags, and
 * adds the `--tag` values; a tag named twice is kept once.
 *
 * @param text The reference as given (a registry reference or `layout:DIR:TAG`).
 * @param more The `--tag` values.
 * @param command The command, for a usage error.
 * @returns The reference to push to and the tags to add after.
 * @throws {UsageError} When a tag is not one, or tags are given with a digest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitTags } from "./tags_flag.ts";
 * assert.deepEqual(splitTags("127.0.0.1:5000/app:v1,v1.2,latest", [], "push"), { text: "127.0.0.1:5000/app:v1", extra: ["v1.2", "latest"] });
 * assert.deepEqual(splitTags("layout:./out:a", ["b", "a"], "push"), { text: "layout:./out:a", extra: ["b"] });
 * assert.deepEqual(splitTags("127.0.0.1:5000/app", [], "push"), { text: "127.0.0.1:5000/app", extra: [] });
 * ```
 */
export function splitTags(
  text: string,
  more: readonly string[],
  command: string,
): { text: string; extra: string[] } {
  const colon = text.lastIndexOf(":");
  const tail = colon < 0 ? "" : text.slice(colon + 1);
  let head = text;
  let first: string | undefined;
  const extra: string[] = [];
  if (tail.includes(",") && !/[/@]/.test(tail)) {
    const [one, ...rest] = tail.split(",");
    for (const name of [one, ...rest]) checkTag(name, command);
    head = `${text.slice(0, colon)}:${one}`;
    first = one;
    extra.push(...rest);
  } else if (!text.includes("@") && colon >= 0 && !tail.includes("/")) {
    first = tail;
  }
  if (more.length > 0 && text.includes("@")) {
    throw new UsageError(`--tag goes with a tag, not a digest`, command);
  }
  for (const name of more) {
    checkTag(name, command);
    extra.push(name);
  }
  const unique = [...new Set(extra)].filter((name) => name !== first);
  return { text: head, extra: unique };
}
