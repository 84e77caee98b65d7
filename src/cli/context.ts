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
} from "../oci/reference.ts";
import { createOpener } from "../transport/opener.ts";
import { createHttpTransport } from "../transport/http_transport.ts";
import { withNetworkErrors } from "../transport/network_errors.ts";
import { DEFAULT_RETRY_POLICY, describeRetry } from "../transport/retry.ts";
import { describeTransientRetry } from "../transport/transient.ts";
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
import { layoutStore, OciLayout } from "../store/layout_store.ts";
import { remoteStore } from "../store/remote_store.ts";
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
  retries?: string;
  "ca-file"?: string;
  cache?: string;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  help: boolean;
}

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
  /**
   * The stage directory: `--cache`, else from `XDG_CACHE_HOME`/`HOME`, read only when a
   * command asks for it (a command without a stage reads no cache variable).
   */
  readonly cache: string;
  /**
   * Attempts in all of a whole operation (an upload, a download, a blob copy), and the line
   * printed before each new one; spread into the operation's options.
   */
  readonly retry: {
    readonly attempts: number;
    readonly onRetry: (error: unknown, attempt: number) => void;
  };
  /**
   * Parses a target given on the command line; an uppercase repository name is lowercased
   * with a one-line warning naming the name used.
   */
  target(text: string, command: string): Target;
  /** A store to write to: a layout target is created when missing. */
  store(target: Target): Promise<Store>;
  /**
   * A store to read from: a layout target must exist already (a usage error of `command`
   * otherwise), and nothing is written to it, not even a missing `blobs/` directory.
   */
  readStore(target: Target, command: string): Promise<Store>;
  /** A line for humans on stderr (not with `--quiet` or `--json`). */
  info(line: string): void;
  /** A warning on stderr, e.g. a retry (not with `--quiet`). */
  warn(line: string): void;
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
  const timeouts = parseTimeout(flags.timeout);
  const attempts = parseRetries(flags.retries) + 1;
  // Network failures are named before --verbose logs them (the opener's own layer then passes
  // them through).
  const httpTransport = withNetworkErrors(
    createHttpTransport({ timeouts, caFile: flags["ca-file"] }),
  );
  const mode = flags.quiet || flags.json
    ? "quiet"
    : Deno.stderr.isTerminal()
    ? "tty"
    : "plain";
  const progress = createProgressDisplay(mode, writeErr);
  // Request lines go through the display too, so that none lands inside a progress block.
  const requestLine = (line: string) => progress.message(line);
  let bottom: Transport = httpTransport;
  if (flags.verbose) {
    bottom = async (request) => {
      const started = performance.now();
      try {
        const response = await httpTransport(request);
        requestLine(
          `${request.method} ${redactUrl(request.url)} ${response.status} ${
            (performance.now() - started).toFixed(0)
          }ms`,
        );
        return response;
      } catch (error) {
        const message = redactSecrets(
          String((error as Error)?.message ?? error),
        );
        // Network errors and timeouts name the request already.
        requestLine(
          message.startsWith(`${request.method} `)
            ? message
            : `${request.method} ${redactUrl(request.url)} failed: ${message}`,
        );
        throw error;
      }
    };
  }
  const warn = (line: string) => {
    if (!flags.quiet) progress.message(`oci: ${line}`);
  };
  const transport = createOpener({
    transport: bottom,
    credentials,
    retry: { attempts, onRetry: (event) => warn(describeRetry(event)) },
  });
  const retry = {
    attempts,
    onRetry: (error: unknown, attempt: number) =>
      warn(describeTransientRetry(error, attempt, attempts)),
  };
  let concurrency = 4;
  if (flags.concurrency !== undefined) {
    concurrency = Number(flags.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new UsageError(
        `--concurrency must be a positive integer, got "${flags.concurrency}"`,
      );
    }
  }
  let cache: string | undefined;
  const remote = (ref: ImageReference) =>
    remoteStore(ref, { transport, signal });
  return {
    flags,
    transport,
    signal,
    concurrency,
    get cache() {
      cache ??= flags.cache ?? defaultCacheDir();
      return cache;
    },
    retry,
    progress,
    target(text, command) {
      const target = parseTarget(text, flags["plain-http"], command);
      if (target.kind === "registry") {
        const written = writtenRepository(text, target.ref);
        if (written !== undefined && written !== target.ref.repository) {
          warn(
            `repository names are lowercase: using "${target.ref.repository}" for "${written}"`,
          );
        }
      }
      return target;
    },
    async store(target) {
      if (target.kind === "layout") return await layoutStore(target.dir);
      return remote(target.ref);
    },
    async readStore(target, command) {
      if (target.kind === "registry") return remote(target.ref);
      await requireLayout(target.dir, command);
      return new OciLayout(target.dir);
    },
    info(line) {
      // Through the display, so that it never runs into a progress line.
      if (!flags.quiet && !flags.json) progress.message(line);
    },
    warn,
    result(json, text) {
      const out = flags.json ? JSON.stringify(json) : text;
      if (out !== "") Deno.stdout.writeSync(encoder.encode(`${out}\n`));
    },
  };
}

/**
 * The repository of a reference as the user wrote it (case kept), or undefined when it cannot
 * be told apart in the text.
 */
function writtenRepository(
  text: string,
  ref: ImageReference,
): string | undefined {
  let name = text.replace(/^oci(\+http)?:\/\//, "");
  const at = name.indexOf("@");
  if (at >= 0) name = name.slice(0, at);
  const colon = name.lastIndexOf(":");
  if (colon > name.lastIndexOf("/")) name = name.slice(0, colon);
  const lower = name.toLowerCase();
  for (
    const repository of [
      ref.repository,
      ref.repository.replace(/^library\//, ""),
    ]
  ) {
    if (lower.endsWith(repository)) {
      const written = name.slice(name.length - repository.length);
      return written === repository
        ? ref.repository
        : ref.repository.slice(0, ref.repository.length - repository.length) +
          written;
    }
  }
  return undefined;
}

/**
 * Checks that a directory is an OCI image layout (it has an `index.json`): reading one must
 * not create it.
 *
 * @param dir The directory.
 * @param command The command, for the usage hint.
 * @throws {UsageError} When it is not.
 */
export async function requireLayout(
  dir: string,
  command: string,
): Promise<void> {
  try {
    await Deno.stat(join(dir, "index.json"));
  } catch {
    throw new UsageError(
      `"${dir}" is not an OCI image layout (no index.json)`,
      command,
    );
  }
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
 * Reads `--retries N`: how many times a failed request, and a failed transfer, is tried again
 * (0: never); absent, the library's default.
 *
 * @param text The flag's value.
 * @returns The number of retries.
 * @throws {UsageError} When it is not a whole number, 0 or more.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRetries } from "./context.ts";
 * assert.equal(parseRetries("0"), 0);
 * assert.equal(parseRetries(undefined), 4);
 * assert.throws(() => parseRetries("-1"));
 * ```
 */
export function parseRetries(text: string | undefined): number {
  if (text === undefined) return DEFAULT_RETRY_POLICY.attempts - 1;
  const retries = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(retries)) {
    throw new UsageError(
      `--retries must be a whole number, 0 or more (0 for none), got "${text}"`,
    );
  }
  return retries;
}

/**
 * Parses a target: `layout:DIR[:TAG]` or `layout:DIR@DIGEST`, `oci://…`/`oci+http://…`, or an image reference.
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
    // layout:DIR@DIGEST names a manifest or blob by digest.
    const byDigest = /^(.+)@([a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)$/
      .exec(rest);
    if (byDigest !== null) {
      return { kind: "layout", dir: byDigest[1], reference: byDigest[2] };
    }
    const colon = rest.lastIndexOf(":");
    const dir = colon > 0 ? rest.slice(0, colon) : rest;
    const reference = colon > 0 ? rest.slice(colon + 1) : "latest";
    if (dir === "" || reference === "") {
      throw new UsageError(
        `"${text}" is not a layout target: use layout:DIR[:TAG] or layout:DIR@DIGEST`,
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
