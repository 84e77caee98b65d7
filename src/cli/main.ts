/**
 * The `oci` command line: argument parsing, help, exit statuses and Ctrl-C.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { COMMANDS } from "./commands.ts";
import {
  createContext,
  type GlobalFlags,
  parseTarget,
  UsageError,
} from "./context.ts";
import { GLOBAL_FLAGS, parseOptions, suggestFlag } from "./flags.ts";
import { commandHelp, mainHelp } from "./help.ts";
import { errorJson } from "./output.ts";
import type { ProgressDisplay } from "./progress.ts";
import { redactSecrets } from "../transport/errors.ts";

/**
 * A `parseArgs` error in our words: a mistyped flag gets the flag it most likely meant, or the
 * commands that take it.
 */
function flagProblem(message: string, command: string): string {
  const unknown = /^Unknown option '(-{1,2})([^']+)'/.exec(message);
  if (unknown === null) return message;
  const [, dashes, typed] = unknown;
  const flag = `${dashes}${typed}`;
  const names = [
    ...Object.keys(GLOBAL_FLAGS),
    ...Object.keys(COMMANDS[command].flags),
  ];
  const suggestion = suggestFlag(typed, names);
  if (suggestion !== undefined) {
    return `unknown flag ${flag}, did you mean --${suggestion}?`;
  }
  const others = Object.values(COMMANDS).filter((c) => typed in c.flags)
    .map((c) => c.name);
  return others.length > 0
    ? `unknown flag ${flag}: ${command} has no such flag (${
      others.join(", ")
    } ${others.length === 1 ? "takes" : "take"} it)`
    : `unknown flag ${flag}`;
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
  /** The command's progress display, once there is one: errors go through it, after its block. */
  let display: ProgressDisplay | undefined;
  const fail = (text: string) => {
    if (display === undefined) {
      Deno.stderr.writeSync(encoder.encode(`oci: ${text}\n`));
      return;
    }
    display.done();
    display.message(`oci: ${text}`);
  };
  const print = (text: string) =>
    Deno.stdout.writeSync(encoder.encode(`${text}\n`));
  let [name, ...rest] = args;
  if (name === "--version") name = "version";
  if (name === undefined || name === "--help" || name === "-h") {
    print(mainHelp());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const flagArgs = rest.includes("--")
    ? rest.slice(0, rest.indexOf("--"))
    : rest;
  const json = flagArgs.includes("--json");
  /** A failure: one line on stderr, and with `--json` the error object on stdout. */
  const failWith = (error: unknown, text: string, interrupted = false) => {
    fail(text);
    if (json) print(JSON.stringify(errorJson(error, interrupted)));
  };
  const usage = (error: UsageError, command?: string) => {
    const hint = command === undefined
      ? "Run 'oci --help' for the commands."
      : `Run 'oci ${error.command ?? command} --help' for usage.`;
    failWith(
      error,
      `${error.message}${/[.?]$/.test(error.message) ? "" : "."} ${hint}`,
    );
    return EXIT.usage;
  };
  const unknownCommand = (typed: string) => {
    const suggestion = suggestFlag(typed, Object.keys(COMMANDS));
    return usage(
      new UsageError(
        `unknown command "${typed}"${
          suggestion ? `, did you mean ${suggestion}?` : ""
        }`,
      ),
    );
  };
  if (name === "help") {
    const [topic] = rest;
    if (topic === undefined) {
      print(mainHelp());
      return EXIT.ok;
    }
    if (COMMANDS[topic] === undefined) return unknownCommand(topic);
    print(commandHelp(topic));
    return EXIT.ok;
  }
  const command = COMMANDS[name];
  if (command === undefined) return unknownCommand(name);

  const controller = new AbortController();
  const stopListening = onCtrlC(controller, fail);
  try {
    let parsed;
    try {
      parsed = parseArgs({
        args: rest,
        options: parseOptions({ ...GLOBAL_FLAGS, ...command.flags }),
        allowPositionals: true,
        strict: true,
      });
    } catch (error) {
      throw new UsageError(flagProblem((error as Error).message, name), name);
    }
    const values = parsed.values as Record<string, unknown>;
    if (values.help) {
      print(commandHelp(name));
      return EXIT.ok;
    }
    const most = command.maxPositionals ?? command.positionals;
    const given = parsed.positionals.length;
    if (given < command.positionals || given > most) {
      const count = most === command.positionals
        ? `${most}`
        : most === Infinity
        ? `at least ${command.positionals}`
        : `${command.positionals} to ${most}`;
      throw new UsageError(
        `${name} takes ${count} argument${
          most === 1 ? "" : "s"
        }, got ${given}: ${command.usage}`,
        name,
      );
    }
    const registries = () =>
      (command.references?.(parsed.positionals) ?? parsed.positionals)
        .flatMap((text) => {
          try {
            const target = parseTarget(
              text,
              Boolean(values["plain-http"]),
              name,
            );
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
    display = context.progress;
    await command.run(context, parsed.positionals, values);
    // A server stopped by Ctrl-C has done its job.
    return EXIT.ok;
  } catch (error) {
    if (error instanceof UsageError) return usage(error, name);
    if (controller.signal.aborted) {
      failWith(error, INTERRUPTED, true);
      return EXIT.interrupted;
    }
    // Errors of the library are redacted already; anything else is, here.
    failWith(error, redactSecrets(String((error as Error)?.message ?? error)));
    return EXIT.failed;
  } finally {
    stopListening();
    display?.done();
  }
}
