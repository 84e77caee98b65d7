/**
 * What every CLI command shares: global flags, the opener (with `--verbose` request logging and
 * command-line credentials), targets (registry references, `oci://` URLs, `layout:DIR[:TAG]`),
 * output and progress.
 *
 * @module
 */
import { join } from "node:path";
import {
  type ImageReference,
  parseMirrorUrl,
  parseReference,
} from "../reference/reference.ts";
import { createOpener } from "../transport/opener.ts";
import { createHttpTransport } from "../transport/http_transport.ts";
import type { Timeouts } from "../transport/timeouts.ts";
import {
  redactSecrets,
  redactUrl,
  rememberSecret,
} from "../transport/errors.ts";
import {
  chainCredentials,
  type CredentialProvider,
  defaultCredentials,
  staticCredentials,
} from "../transport/credentials.ts";
import type { Transport } from "../transport/request_body.ts";
import { layoutStore } from "../store/layout_store.ts";
import { registryStore } from "../store/registry_store.ts";
import type { Store } from "../store/store.ts";
import { createProgressDisplay, type ProgressDisplay } from "./progress.ts";

/** A command-line mistake: exit status 2 and a one-line hint. */
export class UsageError extends Error {
  /** The command whose help to point at. */
  readonly command: string | undefined;

  /**
   * Creates the error.
   *
   * @param message What is wrong.
   * @param command The command, for the hint.
   */
  constructor(message: string, command?: string) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

/** Flags every command takes. */
export interface GlobalFlags {
  "plain-http": boolean;
  username?: string;
  "password-stdin": boolean;
  concurrency?: string;
  timeout?: string;
  "ca-file"?: string;
  cache?: string;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  help: boolean;
}

/** `parseArgs` definitions of the global flags. */
export const GLOBAL_FLAGS = {
  "plain-http": { type: "boolean", default: false },
  username: { type: "string" },
  "password-stdin": { type: "boolean", default: false },
  concurrency: { type: "string" },
  timeout: { type: "string" },
  "ca-file": { type: "string" },
  cache: { type: "string" },
  json: { type: "boolean", default: false },
  quiet: { type: "boolean", short: "q", default: false },
  verbose: { type: "boolean", short: "v", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

/** A place images live: a repository on a registry, or an OCI layout directory. */
export type Target =
  | { kind: "registry"; ref: ImageReference }
  | { kind: "layout"; dir: string; reference: string };

/** Everything a command needs. */
export interface CommandContext {
  readonly flags: GlobalFlags;
  readonly transport: Transport;
  readonly signal: AbortSignal;
  readonly progress: ProgressDisplay;
  /** Blobs moved at once. */
  readonly concurrency: number;
  /** The stage directory. */
  readonly cache: string;
  /** Parses a target given on the command line. */
  target(text: string, command: string): Target;
  /** A store for a target. */
  store(target: Target): Promise<Store>;
  /** A line for humans on stderr (not with `--quiet` or `--json`). */
  info(line: string): void;
  /** The command's result: JSON with `--json`, else the text. */
  result(json: unknown, text: string): void;
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** The default stage: `$XDG_CACHE_HOME/oci`, else `~/.cache/oci`. */
export function defaultCacheDir(): string {
  const xdg = readEnv("XDG_CACHE_HOME");
  if (xdg) return join(xdg, "oci");
  const home = readEnv("HOME") ?? readEnv("USERPROFILE") ?? ".";
  return join(home, ".cache", "oci");
}

async function readStdin(): Promise<string> {
  const text = await new Response(Deno.stdin.readable).text();
  return text.replace(/\r?\n$/, "");
}

/**
 * Builds the context of a command from its global flags.
 *
 * @param flags The parsed global flags.
 * @param registries The registries named on the command line (command-line credentials go only
 * to them).
 * @param signal Aborted on Ctrl-C.
 * @returns The context.
 */
export async function createContext(
  flags: GlobalFlags,
  registries: () => string[],
  signal: AbortSignal,
): Promise<CommandContext> {
  const encoder = new TextEncoder();
  const writeErr = (text: string) =>
    Deno.stderr.writeSync(encoder.encode(text));
  let credentials: CredentialProvider = defaultCredentials();
  if (flags.username !== undefined || flags["password-stdin"]) {
    if (flags.username === undefined || !flags["password-stdin"]) {
      throw new UsageError("--username and --password-stdin go together");
    }
    const password = await readStdin();
    rememberSecret(password);
    const given = { username: flags.username, password };
    credentials = chainCredentials(
      staticCredentials(
        Object.fromEntries(registries().map((registry) => [registry, given])),
      ),
      credentials,
    );
  }
  const httpTransport = createHttpTransport({
    timeouts: parseTimeout(flags.timeout),
    caFile: flags["ca-file"],
  });
  let bottom: Transport = httpTransport;
  if (flags.verbose) {
    bottom = async (request) => {
      const started = performance.now();
      try {
        const response = await httpTransport(request);
        writeErr(
          `${request.method} ${redactUrl(request.url)} ${response.status} ${
            (performance.now() - started).toFixed(0)
          }ms\n`,
        );
        return response;
      } catch (error) {
        writeErr(
          `${request.method} ${redactUrl(request.url)} failed: ${
            redactSecrets(String((error as Error)?.message ?? error))
          }\n`,
        );
        throw error;
      }
    };
  }
  const transport = createOpener({ transport: bottom, credentials });
  let concurrency = 4;
  if (flags.concurrency !== undefined) {
    concurrency = Number(flags.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new UsageError(
        `--concurrency must be a positive integer, got "${flags.concurrency}"`,
      );
    }
  }
  const mode = flags.quiet || flags.json
    ? "quiet"
    : Deno.stderr.isTerminal()
    ? "tty"
    : "plain";
  const progress = createProgressDisplay(mode, writeErr);
  return {
    flags,
    transport,
    signal,
    concurrency,
    cache: flags.cache ?? defaultCacheDir(),
    progress,
    target(text, command) {
      return parseTarget(text, flags["plain-http"], command);
    },
    async store(target) {
      if (target.kind === "layout") return await layoutStore(target.dir);
      return registryStore(target.ref, {
        transport,
        signal,
        onProgress: (p) => progress.update(p),
      });
    },
    info(line) {
      if (!flags.quiet && !flags.json) writeErr(`${line}\n`);
    },
    result(json, text) {
      const out = flags.json ? JSON.stringify(json) : text;
      if (out !== "") Deno.stdout.writeSync(encoder.encode(`${out}\n`));
    },
  };
}

/**
 * Reads `--timeout S`: seconds a registry may stay silent while connecting, before answering and
 * between bytes (0: no limit); absent, the transport's defaults apply.
 *
 * @param text The flag's value.
 * @returns The timeouts, or undefined for the defaults.
 * @throws {UsageError} When it is not a number of seconds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTimeout } from "./context.ts";
 * assert.deepEqual(parseTimeout("0.5"), { connect: 500, headers: 500, idle: 500 });
 * assert.throws(() => parseTimeout("soon"));
 * ```
 */
export function parseTimeout(text: string | undefined): Timeouts | undefined {
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (text.trim() === "" || !Number.isFinite(seconds) || seconds < 0) {
    throw new UsageError(
      `--timeout must be a number of seconds (0 for none), got "${text}"`,
    );
  }
  const ms = seconds * 1000;
  return { connect: ms, headers: ms, idle: ms };
}

/**
 * Parses a target: `layout:DIR[:TAG]`, `oci://…`/`oci+http://…`, or an image reference.
 *
 * @param text The argument.
 * @param plainHttp Reach every registry over plain HTTP.
 * @param command The command, for the usage hint.
 * @returns The target.
 * @throws {UsageError} When it is none of these.
 */
export function parseTarget(
  text: string,
  plainHttp: boolean,
  command: string,
): Target {
  if (text.startsWith("layout:")) {
    const rest = text.slice("layout:".length);
    const colon = rest.lastIndexOf(":");
    const dir = colon > 0 ? rest.slice(0, colon) : rest;
    const reference = colon > 0 ? rest.slice(colon + 1) : "latest";
    if (dir === "" || reference === "") {
      throw new UsageError(
        `"${text}" is not a layout target: use layout:DIR[:TAG]`,
        command,
      );
    }
    return { kind: "layout", dir, reference };
  }
  try {
    const ref = text.startsWith("oci://") || text.startsWith("oci+http://")
      ? parseMirrorUrl(text)
      : parseReference(text, { insecure: plainHttp });
    return { kind: "registry", ref };
  } catch (error) {
    throw new UsageError((error as Error).message, command);
  }
}

/** The tag or digest a target names. */
export function referenceOf(target: Target): string {
  return target.kind === "layout"
    ? target.reference
    : target.ref.digest ?? target.ref.tag ?? "latest";
}
