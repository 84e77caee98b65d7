/**
 * The embedded OCI registry: a `(Request) => Promise<Response>` handler implementing the
 * distribution spec over repositories of the same stores the client uses (in memory, or OCI
 * image layouts on disk), and a server for it on a loopback port.
 *
 * @example Serve on a free loopback port
 * ```ts
 * import assert from "node:assert/strict";
 * import { serveRegistry } from "./mod.ts";
 * await using registry = await serveRegistry();
 * assert.match(registry.host, /^127\.0\.0\.1:\d+$/);
 * ```
 *
 * @example The handler in-process, with no socket
 * ```ts
 * import assert from "node:assert/strict";
 * import { createRegistry } from "./mod.ts";
 * const registry = createRegistry();
 * const response = await registry(new Request("http://127.0.0.1:5000/v2/"));
 * assert.equal(response.status, 200);
 * ```
 *
 * @module
 */
export {
  createRegistry,
  type RegistryHandler,
  type RegistryServerOptions,
  type RequestInfo,
} from "./handler.ts";
export {
  type RunningRegistry,
  serveRegistry,
  type ServeRegistryOptions,
} from "./serve.ts";
export {
  createRegistryAuth,
  hashPassword,
  type Need,
  type RegistryAuth,
  type RegistryAuthOptions,
  verifyPassword,
} from "./auth.ts";
export {
  type BlobStore,
  layoutRepositories,
  memoryRepositories,
  type Repositories,
  type Repository,
} from "./repositories.ts";
