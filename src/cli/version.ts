/**
 * `oci version` (and `oci --version`): the version of this package, from deno.json, and of
 * the Deno running it.
 *
 * @module
 */
import config from "../../deno.json" with { type: "json" };
import type { Command } from "./command.ts";

/** The version of the package, as in deno.json. */
export const VERSION: string = config.version;

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
