/**
 * The embedded OCI registry: a `(Request) => Promise<Response>` handler implementing the
 * distribution spec, with storage in memory or as OCI image layouts on disk.
 *
 * @example Serve on a free loopback port
 * ```ts
 * import assert from "node:assert/strict";
 * import { serveRegistry } from "./mod.ts";
 * await using registry = await serveRegistry();
 * assert.match(registry.host, /^127\.0\.0\.1:\d+$/);
 * ```
 *
 * @module
 */
export * from "./repositories.ts";
export * from "./blob_links.ts";
export * from "./repository_name.ts";
export * from "./handler.ts";
export * from "./serve.ts";
export * from "./auth.ts";
