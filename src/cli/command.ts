/**
 * What a command of the CLI is ({@linkcode Command}: its flags, help, positional arguments and
 * what it does), and the argument helpers the commands share: a `--platform` flag, a target
 * that must be a registry or an existing layout, a target written back for results.
 *
 * @module
 */
import { formatReference } from "../oci/reference.ts";
import { parsePlatform, type Platform } from "../oci/platform.ts";
import {
  type CommandContext,
  requireLayout,
  type Target,
  UsageError,
} from "./context.ts";
import type { FlagSpec } from "./flags.ts";

/** One command: its flags, help, positional arguments and what it does. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly examples: readonly string[];
  /** More about the command in its help, after the flags (a paragraph). */
  readonly details?: string;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** How many positional arguments it takes (at least, with `maxPositionals`). */
  readonly positionals: number;
  /** The most positional arguments it takes, when more than `positionals` (Infinity: any). */
  readonly maxPositionals?: number;
  /**
   * The positional arguments that name registries (for command-line credentials), when not
   * every one does (files, subcommands).
   */
  references?(args: readonly string[]): string[];
  run(
    context: CommandContext,
    args: string[],
    values: Record<string, unknown>,
  ): Promise<void>;
}

/**
 * The value of a `--platform` flag as a {@linkcode Platform}, or `undefined` without one; a
 * malformed one is a usage error of `command`.
 */
export function platformFlag(
  value: unknown,
  command: string,
): Platform | undefined {
  if (value === undefined) return undefined;
  try {
    return parsePlatform(String(value));
  } catch (error) {
    throw new UsageError((error as Error).message, command);
  }
}

/** A target as the user wrote it, for results. */
export function formatTarget(target: Target): string {
  return target.kind === "registry"
    ? formatReference(target.ref)
    : `layout:${target.dir}:${target.reference}`;
}

/** A layout target that must already be a layout (reading it must not create one). */
export async function existingLayout(
  target: Target & { kind: "layout" },
  command: string,
): Promise<Target & { kind: "layout" }> {
  await requireLayout(target.dir, command);
  return target;
}

/** The reference of a target that must name a registry: a layout is a usage error of `command`. */
export function registryTarget(target: Target, command: string) {
  if (target.kind !== "registry") {
    throw new UsageError(
      `${command} needs a registry reference, not a layout`,
      command,
    );
  }
  return target.ref;
}
