/**
 * The `oci` command line: argument parsing, help, exit statuses and Ctrl-C.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { COMMANDS } from "./commands.ts";
import {
  createContext,
  GLOBAL_FLAGS,
  type GlobalFlags,
  parseTarget,
  UsageError,
} from "./context.ts";
import { redactSecrets } from "../transport/errors.ts";

const GLOBAL_HELP = `Global flags:
  --plain-http          reach registries over HTTP (automatic for localhost and 127.0.0.0/8)
  --username NAME       with --password-stdin: credentials for the registries named here
  --password-stdin      read the password from standard input
                        (credentials also come from OCI_USERNAME/OCI_PASSWORD and Docker's config.json)
  --concurrency N       blobs moved at once (default 4)
  --timeout S           seconds a registry may stay silent (connecting, before answering, between
                        bytes) before the request fails and is retried; 0 for none (default 30
                        to connect and between bytes, 60 for an answer)
  --retries N           times a failed request or transfer is tried again; 0 for none
                        (default 4). Each retry prints one line on stderr (not with --quiet)
  --ca-file PATH        also trust the PEM certificates in PATH (a private CA) for HTTPS registries,
                        token servers and blob storage; DENO_CERT and --cert work too
  --cache DIR           the stage, an OCI image layout (default $XDG_CACHE_HOME/oci)
  --json                print one JSON object with the result on stdout
  -q, --quiet           no progress, messages or retry lines; errors only
  -v, --verbose         one line per HTTP request on stderr (secrets redacted)
  -h, --help            help for a command

A <ref> is an image reference (ghcr.io/org/app:v1, 127.0.0.1:5000/app@sha256:…), an
oci:// or oci+http:// URL, or an OCI image layout layout:DIR[:TAG] (copy and inspect).`;

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.values(COMMANDS).map((c) =>
    `  ${c.name.padEnd(width)}  ${c.summary}`
  );
  return `oci: push, pull and copy images and artifacts on OCI registries

Usage: oci <command> [arguments] [flags]

Commands:
${lines.join("\n")}

Run 'oci <command> --help' for a command's flags and examples.

${GLOBAL_HELP}`;
}

function commandHelp(name: string): string {
  const command = COMMANDS[name];
  return `${command.summary}

Usage: ${command.usage}

Examples:
${command.examples.map((e) => `  ${e}`).join("\n")}

${GLOBAL_HELP}`;
}

/** Exit statuses: success, an operation failed, the command line is wrong, interrupted. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/**
 * How long a command may take to wind down after Ctrl-C (transfers stop, temporary files go,
 * upload sessions are cancelled) before the process exits anyway: what is left then (a
 * temporary file under a locked name) is removed by the next run that opens the stage.
 */
const INTERRUPT_GRACE = 800;

/** The message of an interrupted command. */
const INTERRUPTED = "interrupted; nothing partial was kept";

/**
 * Listens for Ctrl-C: the first aborts the command's signal (with an `AbortError`) and arms
 * the grace timer, after which the process exits 130 whatever is still running; a second one
 * exits 130 at once. Returns the function that stops listening.
 */
function onCtrlC(
  controller: AbortController,
  fail: (text: string) => void,
): () => void {
  let grace: ReturnType<typeof setTimeout> | undefined;
  const exitNow = () => {
    fail(
      "interrupted before the cleanup ended; the next run removes any temporary file left",
    );
    Deno.exit(EXIT.interrupted);
  };
  const listener = () => {
    if (controller.signal.aborted) return exitNow();
    controller.abort(new DOMException("interrupted (SIGINT)", "AbortError"));
    const timer = setTimeout(exitNow, INTERRUPT_GRACE);
    // Only a command still running after the grace needs the timer: it does not keep us alive.
    Deno.unrefTimer(timer as unknown as number);
    grace = timer;
  };
  try {
    Deno.addSignalListener("SIGINT", listener);
  } catch {
    // Signals are not available everywhere (Windows lacks some): Ctrl-C then kills at once.
  }
  return () => {
    clearTimeout(grace);
    try {
      Deno.removeSignalListener("SIGINT", listener);
    } catch {
      // See above.
    }
  };
}

/**
 * Runs the CLI with the given arguments and returns the exit status.
 *
 * @param args The arguments after the program name.
 * @returns 0 on success, 1 on an operational error, 2 on a usage error, 130 on Ctrl-C (the
 * first Ctrl-C stops the transfers, removes temporary files and cancels upload sessions, and
 * the process exits within a second; a second Ctrl-C exits at once).
 *
 * @example
 * ```ts ignore
 * Deno.exit(await main(Deno.args));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const encoder = new TextEncoder();
  const fail = (text: string) =>
    Deno.stderr.writeSync(encoder.encode(`oci: ${text}\n`));
  const [name, ...rest] = args;
  if (
    name === undefined || name === "--help" || name === "-h" || name === "help"
  ) {
    Deno.stdout.writeSync(encoder.encode(`${mainHelp()}\n`));
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    fail(`unknown command "${name}". Run 'oci --help' for the commands.`);
    return EXIT.usage;
  }

  const controller = new AbortController();
  const stopListening = onCtrlC(controller, fail);
  try {
    let parsed;
    try {
      parsed = parseArgs({
        args: rest,
        options: { ...GLOBAL_FLAGS, ...command.flags },
        allowPositionals: true,
        strict: true,
      });
    } catch (error) {
      throw new UsageError((error as Error).message, name);
    }
    const values = parsed.values as Record<string, unknown>;
    if (values.help) {
      Deno.stdout.writeSync(encoder.encode(`${commandHelp(name)}\n`));
      return EXIT.ok;
    }
    if (parsed.positionals.length !== command.positionals) {
      throw new UsageError(
        `${name} takes ${command.positionals} argument${
          command.positionals === 1 ? "" : "s"
        }, got ${parsed.positionals.length}: ${command.usage}`,
        name,
      );
    }
    const registries = () =>
      parsed.positionals.flatMap((text) => {
        try {
          const target = parseTarget(text, Boolean(values["plain-http"]), name);
          return target.kind === "registry" ? [target.ref.registry] : [];
        } catch {
          return [];
        }
      });
    const context = await createContext(
      values as unknown as GlobalFlags,
      registries,
      controller.signal,
    );
    await command.run(context, parsed.positionals, values);
    // A server stopped by Ctrl-C has done its job.
    return EXIT.ok;
  } catch (error) {
    if (error instanceof UsageError) {
      fail(
        `${error.message}. Run 'oci ${
          error.command ?? name
        } --help' for usage.`,
      );
      return EXIT.usage;
    }
    if (controller.signal.aborted) {
      fail(INTERRUPTED);
      return EXIT.interrupted;
    }
    // Errors of the library are redacted already; anything else is, here.
    fail(redactSecrets(String((error as Error)?.message ?? error)));
    return EXIT.failed;
  } finally {
    stopListening();
  }
}
