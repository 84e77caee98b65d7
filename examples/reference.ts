/**
 * The main job for now: parse image references given on the command line and print what the
 * client makes of them (canonical name, registry, repository, tag or digest, and the scheme
 * it would talk).
 *
 * @example
 * ```sh
 * deno task example ghcr.io/spack/ubuntu:24.04 localhost:5000/app@sha256:...
 * ```
 *
 * @module
 */
import { formatReference, parseReference } from "../mod.ts";

const inputs = Deno.args.length > 0 ? Deno.args : [
  "ubuntu:22.04",
  "ghcr.io/spack/ubuntu-jammy:latest",
  "127.0.0.1:5000/cache/app:v1",
  "[::1]:5000/app@sha256:" + "a".repeat(64),
];
for (const input of inputs) {
  try {
    const ref = parseReference(input);
    console.log(`${input}
  canonical  ${formatReference(ref)}
  registry   ${ref.registry} (${ref.scheme})
  repository ${ref.repository}
  ${
      ref.digest
        ? `digest     ${ref.digest}`
        : `tag        ${ref.tag ?? "latest"}`
    }`);
  } catch (error) {
    console.log(`${input}\n  error      ${(error as Error).message}`);
    Deno.exitCode = 1;
  }
}
