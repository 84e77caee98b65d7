/**
 * The `oci` command: push, pull, copy, inspect and list tags of images on OCI registries.
 * Run it with `deno task oci <command>` or straight from its URL:
 * `deno run -A <url>/cli.ts push ./dir 127.0.0.1:5000/app:v1`.
 *
 * @example Show the help
 * ```sh
 * deno run -A cli.ts --help
 * ```
 *
 * @module
 */
import { main } from "./src/cli/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
