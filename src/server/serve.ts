/**
 * Serving the embedded registry on a socket with `Deno.serve`.
 *
 * @module
 */
import { createRegistry, type RegistryServerOptions } from "./handler.ts";
import { layoutStorage } from "./layout_storage.ts";
import { createRegistryAuth, type RegistryAuthOptions } from "./auth.ts";

/** Options of {@linkcode serveRegistry}. */
export interface ServeRegistryOptions
  extends Omit<RegistryServerOptions, "auth"> {
  /** Users (htpasswd-style entries) and, optionally, Bearer tokens from `/token`. */
  readonly auth?: RegistryAuthOptions;
  /** Interface to listen on. @default {"127.0.0.1"} */
  readonly hostname?: string;
  /** Port; 0 picks a free one. @default {0} */
  readonly port?: number;
  /** Store content as OCI image layouts under this directory instead of in memory. */
  readonly root?: string;
  /** Stops the server. */
  readonly signal?: AbortSignal;
}

/** A running registry. */
export interface RunningRegistry extends AsyncDisposable {
  /** `http://host:port`. */
  readonly url: string;
  /** `host:port`, for image references. */
  readonly host: string;
  /** Stops it. */
  shutdown(): Promise<void>;
}

/**
 * Starts the embedded registry on a socket (loopback by default).
 *
 * @param options Where to listen, `root` for on-disk layouts, and handler options.
 * @returns The running registry; `await using` stops it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serveRegistry } from "./serve.ts";
 * await using registry = await serveRegistry();
 * const response = await fetch(`${registry.url}/v2/`);
 * assert.equal(response.status, 200);
 * await response.body?.cancel();
 * ```
 */
export async function serveRegistry(
  options: ServeRegistryOptions = {},
): Promise<RunningRegistry> {
  const storage = options.storage ??
    (options.root !== undefined
      ? await layoutStorage(options.root)
      : undefined);
  const auth = options.auth === undefined
    ? undefined
    : await createRegistryAuth(options.auth);
  const handler = createRegistry({ ...options, storage, auth });
  const server = Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 0,
    signal: options.signal,
    onListen() {},
  }, handler);
  const hostname = server.addr.hostname.includes(":")
    ? `[${server.addr.hostname}]`
    : server.addr.hostname;
  const host = `${hostname}:${server.addr.port}`;
  return {
    url: `http://${host}`,
    host,
    shutdown: () => server.shutdown(),
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}
