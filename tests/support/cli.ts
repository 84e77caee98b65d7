/** Runs the real `oci` command line in a child process, as users do. */
import { fileURLToPath } from "node:url";

/** The CLI's entry point. */
export const CLI: string = fileURLToPath(
  new URL("../../cli.ts", import.meta.url),
);

/** Broad grants, for tests about something other than permissions. */
export const ALL_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
];

/** What a run printed and how it ended. */
export interface CliRun {
  code: number;
  /** The signal that ended it, if one did. */
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode runCli}. */
export interface RunCliOptions {
  /** Deno permission flags. @default {ALL_PERMISSIONS} */
  permissions?: readonly string[];
  /** Written to the CLI's stdin, then closed (no stdin when absent). */
  stdin?: string;
  /** More environment variables (NO_COLOR=1 is always set). */
  env?: Record<string, string>;
  /** Sends `signal` after `delay` ms unless the run ended first. */
  kill?: { signal: Deno.Signal; delay: number };
}

/** Runs `deno run <permissions> cli.ts <args>` and waits for it. */
export async function runCli(
  args: readonly string[],
  options: RunCliOptions = {},
): Promise<CliRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...(options.permissions ?? ALL_PERMISSIONS), CLI, ...args],
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const { kill } = options;
  const timer = kill === undefined ? undefined : setTimeout(() => {
    try {
      child.kill(kill.signal);
    } catch {
      // It ended first.
    }
  }, kill.delay);
  const out = await child.output();
  clearTimeout(timer);
  return {
    code: out.code,
    signal: out.signal,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}
