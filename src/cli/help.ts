/**
 * The help of the CLI: the list of commands, and each command's usage, flags (with their
 * defaults), examples and the global flags.
 *
 * @module
 */
import { COMMANDS } from "./commands.ts";
import { formatFlags, GLOBAL_FLAGS } from "./flags.ts";

const REFERENCES =
  `A <ref> is an image reference (ghcr.io/org/app:v1, 127.0.0.1:5000/app@sha256:…), an
oci:// or oci+http:// URL, or an OCI image layout layout:DIR[:TAG] (push, pull, copy, inspect,
tags). Repository names are lowercase: an uppercase one is lowercased, with a warning.`;

/** The global flags' section of every help. */
export function globalHelp(): string {
  return `Global flags:\n${formatFlags(GLOBAL_FLAGS)}`;
}

/** `oci --help`: the commands and the global flags. */
export function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.values(COMMANDS).map((c) =>
    `  ${c.name.padEnd(width)}  ${c.summary}`
  );
  return `oci: push, pull and copy images and artifacts on OCI registries

Usage: oci <command> [arguments] [flags]

Commands:
${lines.join("\n")}

Run 'oci <command> --help' (or 'oci help <command>') for a command's flags and examples,
'oci --version' for the version.

${globalHelp()}

${REFERENCES}`;
}

/** The usage line and the flags of a command: what the README's command reference shows. */
export function commandReference(name: string): string {
  const command = COMMANDS[name];
  const flags = Object.keys(command.flags).length === 0
    ? ""
    : `\n\nFlags:\n${formatFlags(command.flags)}`;
  return `Usage: ${command.usage}${flags}`;
}

/** `oci <command> --help`: what it does, usage, flags, examples, global flags. */
export function commandHelp(name: string): string {
  const command = COMMANDS[name];
  const details = command.details ? `\n\n${command.details}` : "";
  return `${command.summary}

${commandReference(name)}${details}

Examples:
${command.examples.map((e) => `  ${e}`).join("\n")}

${globalHelp()}

${REFERENCES}`;
}
