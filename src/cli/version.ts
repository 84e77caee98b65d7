/**
 * `oci version` (and `oci --version`): the version of this package and of the Deno running it.
 *
 * @module
 */
import type { Command } from "./command.ts";

/**
 * The version of the package: deno.json's `version` (src/ imports nothing outside it;
 * tests/cli/help_test.ts checks that the two agree).
 */
export const VERSION = "0.1.0";

/** The `version` command. */
export const version: Command = {
  name: "version",
  summary: "print the version of oci (also: oci --version)",
  usage: "oci version",
  examples: ["oci version", "oci --version --json"],
  flags: {},
  positionals: 0,
  run(context) {
    context.result(
      { version: VERSION, deno: Deno.version.deno },
      `oci ${VERSION} (deno ${Deno.version.deno})`,
    );
    return Promise.resolve();
  },
};
