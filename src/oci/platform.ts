/**
 * Platforms (`os/architecture/variant`): parse, normalise, match, and the host's own.
 *
 * @module
 */

/** A platform as OCI descriptors and image configs spell it. */
export interface Platform {
  /** Operating system, e.g. `linux`, `windows`. */
  readonly os: string;
  /** CPU architecture in Go's spelling, e.g. `amd64`, `arm64`, `arm`. */
  readonly architecture: string;
  /** CPU variant, e.g. `v7`, `v8`. */
  readonly variant?: string;
  /** Operating system version, e.g. `10.0.20348.2113` for Windows. */
  readonly "os.version"?: string;
  /** Required operating system features. */
  readonly "os.features"?: readonly string[];
}

const ARCHITECTURE_ALIASES: Readonly<Record<string, string>> = {
  x86_64: "amd64",
  "x86-64": "amd64",
  aarch64: "arm64",
  armhf: "arm",
  armel: "arm",
  i386: "386",
  i686: "386",
};

const OS_ALIASES: Readonly<Record<string, string>> = { macos: "darwin" };

/**
 * Normalises a platform the way container runtimes compare them: architecture aliases
 * (`x86_64` ⇒ `amd64`, `aarch64` ⇒ `arm64`), default variants (`arm64` ⇒ `v8`, `arm` ⇒ `v7`),
 * and variants written without their `v`.
 *
 * @param platform The platform.
 * @returns The normalised platform.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { normalizePlatform } from "./platform.ts";
 * assert.deepEqual(normalizePlatform({ os: "Linux", architecture: "aarch64" }), { os: "linux", architecture: "arm64", variant: "v8" });
 * ```
 */
export function normalizePlatform(platform: Platform): Platform {
  const os = platform.os.toLowerCase();
  const rawArchitecture = platform.architecture.toLowerCase();
  const architecture = ARCHITECTURE_ALIASES[rawArchitecture] ??
    rawArchitecture;
  let variant = platform.variant?.toLowerCase();
  if (variant && /^\d+$/.test(variant)) variant = `v${variant}`;
  if (!variant) {
    if (architecture === "arm64") variant = "v8";
    else if (architecture === "arm") {
      variant = rawArchitecture === "armel" ? "v6" : "v7";
    }
  }
  const normalized: {
    os: string;
    architecture: string;
    variant?: string;
    "os.version"?: string;
    "os.features"?: readonly string[];
  } = { os: OS_ALIASES[os] ?? os, architecture };
  if (variant) normalized.variant = variant;
  if (platform["os.version"]) {
    normalized["os.version"] = platform["os.version"];
  }
  if (platform["os.features"]?.length) {
    normalized["os.features"] = platform["os.features"];
  }
  return normalized;
}

/**
 * Parses `os/architecture[/variant][:os.version]`, e.g. `linux/arm64/v8` or
 * `windows/amd64:10.0.20348.2113`.
 *
 * @param text The platform string.
 * @returns The platform (not normalised: `normalizePlatform` does that).
 * @throws {SyntaxError} When the text is not such a platform.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePlatform } from "./platform.ts";
 * assert.deepEqual(parsePlatform("linux/arm/v7"), { os: "linux", architecture: "arm", variant: "v7" });
 * assert.deepEqual(parsePlatform("windows/amd64:10.0.17763"), { os: "windows", architecture: "amd64", "os.version": "10.0.17763" });
 * ```
 */
export function parsePlatform(text: string): Platform {
  const colon = text.indexOf(":");
  const path = colon < 0 ? text : text.slice(0, colon);
  const version = colon < 0 ? undefined : text.slice(colon + 1);
  const parts = path.split("/");
  if (
    parts.length < 2 || parts.length > 3 ||
    parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p)) || version === ""
  ) {
    throw new SyntaxError(
      `Cannot parse platform "${text}": expected os/architecture[/variant][:os.version], e.g. linux/arm64/v8`,
    );
  }
  const [os, architecture, variant] = parts;
  return {
    os,
    architecture,
    ...(variant ? { variant } : {}),
    ...(version ? { "os.version": version } : {}),
  };
}

/**
 * Prints a platform as `os/architecture[/variant][:os.version]`.
 *
 * @param platform The platform.
 * @returns The text form.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatPlatform } from "./platform.ts";
 * assert.equal(formatPlatform({ os: "linux", architecture: "arm64", variant: "v8" }), "linux/arm64/v8");
 * ```
 */
export function formatPlatform(platform: Platform): string {
  let text = `${platform.os}/${platform.architecture}`;
  if (platform.variant) text += `/${platform.variant}`;
  if (platform["os.version"]) text += `:${platform["os.version"]}`;
  return text;
}

/**
 * Tells whether a candidate (from an index) serves the wanted platform: same OS, architecture
 * and variant after normalisation, and the same `os.version` when one is wanted.
 *
 * @param wanted The platform asked for.
 * @param candidate The platform an index entry declares.
 * @returns True on a match.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { matchPlatform } from "./platform.ts";
 * assert.ok(matchPlatform({ os: "linux", architecture: "arm64" }, { os: "linux", architecture: "arm64", variant: "v8" }));
 * assert.ok(!matchPlatform({ os: "linux", architecture: "arm", variant: "v6" }, { os: "linux", architecture: "arm" }));
 * ```
 */
export function matchPlatform(wanted: Platform, candidate: Platform): boolean {
  const a = normalizePlatform(wanted);
  const b = normalizePlatform(candidate);
  return a.os === b.os && a.architecture === b.architecture &&
    a.variant === b.variant &&
    (a["os.version"] === undefined || a["os.version"] === b["os.version"]);
}

/**
 * The platform images default to on this host: `linux/<host architecture>`, normalised, on
 * every host OS (as docker does: containers are Linux images, so a Mac on Apple silicon gets
 * `linux/arm64/v8`, not `darwin/arm64/v8`).
 *
 * @param build The host, `Deno.build` by default (a test injects another).
 * @returns The default platform.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatPlatform, hostPlatform } from "./platform.ts";
 * assert.equal(hostPlatform().os, "linux");
 * assert.equal(formatPlatform(hostPlatform({ os: "darwin", arch: "aarch64" })), "linux/arm64/v8");
 * assert.equal(formatPlatform(hostPlatform({ os: "windows", arch: "x86_64" })), "linux/amd64");
 * ```
 */
export function hostPlatform(
  build: { readonly os: string; readonly arch: string } = Deno.build,
): Platform {
  return normalizePlatform({ os: "linux", architecture: build.arch });
}
