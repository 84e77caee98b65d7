/**
 * Serving the embedded registry on a socket with `Deno.serve`.
 *
 * @module
 */
import { createRegistry, type RegistryServerOptions } from "./handler.ts";
import { layoutRepositories } from "./repositories.ts";
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
  /**
   * Told when the listener failed (EMFILE: out of file descriptors) or cannot listen again
   * yet; it listens again on the same address by itself.
   */
  readonly onListenerError?: (error: unknown) => void;
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
 * When the process runs out of file descriptors, a request that needed one gets 503
 * `UNAVAILABLE`, and a listener that failed to accept listens again; the process never ends.
 * Shutting down stops the upload-session timer and drops unfinished uploads with their bytes.
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
  const repositories = options.repositories ??
    (options.root !== undefined
      ? await layoutRepositories(options.root)
      : undefined);
  const auth = options.auth === undefined
    ? undefined
    : await createRegistryAuth(options.auth);
  const handler = createRegistry({ ...options, repositories, auth });
  const listener = listenResilient(
    options.hostname ?? "127.0.0.1",
    options.port ?? 0,
    handler,
    options.onListenerError,
  );
  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    stopping ??= (async () => {
      await listener.shutdown();
      await handler.close();
    })();
  options.signal?.addEventListener("abort", () => void shutdown(), {
    once: true,
  });
  if (options.signal?.aborted) await shutdown();
  const hostname = listener.addr.hostname.includes(":")
    ? `[${listener.addr.hostname}]`
    : listener.addr.hostname;
  const host = `${hostname}:${listener.addr.port}`;
  return {
    url: `http://${host}`,
    host,
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}

/** A listener that comes back after it failed. */
interface ResilientListener {
  readonly addr: Deno.NetAddr;
  shutdown(): Promise<void>;
}

/** The first wait before listening again, and the longest, in milliseconds. */
const RELISTEN_DELAY = { first: 10, max: 1000 };

/**
 * Serves `handler` on a port and, when the listener dies (`Deno.serve` stops for good when an
 * accept fails, for one with EMFILE when the process is out of descriptors), listens again on
 * the same address, waiting longer each time it cannot yet, as Go's HTTP server retries
 * accepts; so the process goes on answering once descriptors are free again.
 */
function listenResilient(
  hostname: string,
  port: number,
  handler: (request: Request, info: Deno.ServeHandlerInfo) => Promise<Response>,
  onError: ((error: unknown) => void) | undefined,
): ResilientListener {
  let server = Deno.serve({ hostname, port, onListen() {} }, handler);
  const addr = server.addr;
  let stopped = false;
  let wake: (() => void) | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
    });
  const supervise = async (): Promise<void> => {
    for (;;) {
      try {
        await server.finished;
        return; // shut down on purpose
      } catch (error) {
        if (stopped) return;
        onError?.(error);
      }
      for (
        let delay = RELISTEN_DELAY.first;;
        delay = Math.min(delay * 2, RELISTEN_DELAY.max)
      ) {
        await sleep(delay);
        if (stopped) return;
        try {
          server = Deno.serve(
            { hostname, port: addr.port, onListen() {} },
            handler,
          );
          break;
        } catch (error) {
          onError?.(error);
        }
      }
    }
  };
  const supervising = supervise();
  return {
    addr,
    async shutdown() {
      stopped = true;
      wake?.();
      await server.shutdown().catch(() => {});
      await supervising;
    },
  };
}
