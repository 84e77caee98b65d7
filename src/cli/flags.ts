/**
 * Flags of the CLI: the global ones, how `parseArgs` reads them, how the help lists them, and
 * the flag a mistyped one most likely meant.
 *
 * @module
 */

/** One flag: how `parseArgs` reads it and how the help describes it. */
export interface FlagSpec {
  readonly type: "string" | "boolean";
  /** Given more than once, its values are collected. */
  readonly multiple?: boolean;
  /** A one-letter alias, e.g. `q` for `--quiet`. */
  readonly short?: string;
  /** The name of its value in the help, e.g. `P` in `--platform P`. */
  readonly value?: string;
  /** What it does, with its default, for the help. */
  readonly description: string;
}

/** Flags every command takes. */
export const GLOBAL_FLAGS: Readonly<Record<string, FlagSpec>> = {
  "plain-http": {
    type: "boolean",
    description:
      "reach registries over HTTP (automatic for localhost, 127.0.0.0/8 and [::1])",
  },
  username: {
    type: "string",
    value: "NAME",
    description:
      "with --password-stdin: credentials for the registries named on the command line (default: OCI_USERNAME/OCI_PASSWORD, else Docker's config.json)",
  },
  "password-stdin": {
    type: "boolean",
    description: "read the password of --username from standard input",
  },
  concurrency: {
    type: "string",
    value: "N",
    description: "blobs moved at once (default 4)",
  },
  timeout: {
    type: "string",
    value: "S",
    description:
      "seconds a registry may stay silent (connecting, before answering, between bytes) before the request fails and is retried; 0 for none (default 30 to connect and between bytes, 60 for an answer)",
  },
  retries: {
    type: "string",
    value: "N",
    description:
      "times a failed request or transfer is tried again; 0 for none (default 4). Each retry prints one line on stderr (not with --quiet)",
  },
  "ca-file": {
    type: "string",
    value: "PATH",
    description:
      "also trust the PEM certificates in PATH (a private CA) for HTTPS registries, token servers and blob storage; DENO_CERT and --cert work too (default: none)",
  },
  cache: {
    type: "string",
    value: "DIR",
    description:
      "the stage of push and pull, an OCI image layout (default $XDG_CACHE_HOME/oci, else $HOME/.cache/oci)",
  },
  json: {
    type: "boolean",
    description:
      'print one JSON object with the result on stdout; on failure {"error": {"message", "code", "status", "url"}} (default: text)',
  },
  quiet: {
    type: "boolean",
    short: "q",
    description: "no progress, messages or retry lines; errors only",
  },
  verbose: {
    type: "boolean",
    short: "v",
    description: "one line per HTTP request on stderr (secrets redacted)",
  },
  help: { type: "boolean", short: "h", description: "help for a command" },
};

/** A `parseArgs` option. */
type ParseOption = {
  type: "string" | "boolean";
  multiple?: boolean;
  short?: string;
  default?: boolean;
};

/**
 * The `parseArgs` options of flag specs: booleans default to false.
 *
 * @param specs The flags by name.
 * @returns The options.
 */
export function parseOptions(
  specs: Readonly<Record<string, FlagSpec>>,
): Record<string, ParseOption> {
  return Object.fromEntries(
    Object.entries(specs).map(([name, spec]) => [name, {
      type: spec.type,
      ...(spec.multiple ? { multiple: true } : {}),
      ...(spec.short ? { short: spec.short } : {}),
      ...(spec.type === "boolean" ? { default: false } : {}),
    }]),
  );
}

/** Where descriptions start in the help. */
const COLUMN = 24;
/** Width the help wraps at. */
const WIDTH = 100;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}

/**
 * The help's list of flags: one entry per flag, its description wrapped at 100 columns.
 *
 * @param specs The flags by name.
 * @returns The lines, joined by newlines.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatFlags } from "./flags.ts";
 * assert.equal(
 *   formatFlags({ port: { type: "string", value: "N", description: "the port (default 5000)" } }),
 *   "  --port N              the port (default 5000)",
 * );
 * ```
 */
export function formatFlags(specs: Readonly<Record<string, FlagSpec>>): string {
  const lines: string[] = [];
  for (const [name, spec] of Object.entries(specs)) {
    let left = `  ${spec.short ? `-${spec.short}, ` : ""}--${name}${
      spec.value ? ` ${spec.value}` : ""
    }${spec.multiple ? "..." : ""}`;
    const text = wrap(spec.description, WIDTH - COLUMN);
    if (left.length + 2 > COLUMN) {
      lines.push(left);
      left = "";
    }
    lines.push(`${left.padEnd(COLUMN)}${text[0] ?? ""}`);
    for (const more of text.slice(1)) lines.push(`${"".padEnd(COLUMN)}${more}`);
  }
  return lines.join("\n");
}

/** Edit distance of two short strings (insertions, deletions, substitutions, swaps). */
function distance(a: string, b: string): number {
  const rows = Array.from(
    { length: a.length + 1 },
    () => new Array<number>(b.length + 1).fill(0),
  );
  for (let i = 0; i <= a.length; i++) rows[i][0] = i;
  for (let j = 0; j <= b.length; j++) rows[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      rows[i][j] = Math.min(
        rows[i - 1][j] + 1,
        rows[i][j - 1] + 1,
        rows[i - 1][j - 1] + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        rows[i][j] = Math.min(rows[i][j], rows[i - 2][j - 2] + 1);
      }
    }
  }
  return rows[a.length][b.length];
}

/**
 * The flag a mistyped one most likely meant: the closest name within a third of its length
 * (at least 2 edits), or a name it is a prefix of.
 *
 * @param typed The flag as typed, without dashes (`platfrom`).
 * @param names The flags the command takes.
 * @returns The closest name, or undefined when none is close.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { suggestFlag } from "./flags.ts";
 * assert.equal(suggestFlag("platfrom", ["platform", "all"]), "platform");
 * assert.equal(suggestFlag("zzz", ["platform", "all"]), undefined);
 * ```
 */
export function suggestFlag(
  typed: string,
  names: readonly string[],
): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of names) {
    const d = name.startsWith(typed) && typed.length >= 3
      ? 1
      : distance(typed, name);
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(typed.length / 3))
    ? best
    : undefined;
}
