/**
 * Whether a module Worker of ours can start: Deno loads a local Worker's module only with read
 * access to its file (the CLI's least permissions read only the stage and the target), and a
 * Worker that cannot load prints an uncaught error even when it is handled.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/**
 * Tells whether the Worker module at `url` may be loaded: always for a module by URL (its
 * import was allowed with ours), for a local file when reading it is allowed.
 *
 * @param url The Worker's module.
 * @returns Whether to start it (else the work is done on this thread).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { workerAllowed } from "./worker_url.ts";
 * assert.equal(typeof workerAllowed(new URL("./deflate_worker.ts", import.meta.url)), "boolean");
 * ```
 */
export function workerAllowed(url: URL): boolean {
  if (typeof Worker === "undefined") return false;
  if (url.protocol !== "file:") return true;
  try {
    return Deno.permissions.querySync({
      name: "read",
      path: fileURLToPath(url),
    })
      .state === "granted";
  } catch {
    return false;
  }
}
