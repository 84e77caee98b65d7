/**
 * Embedded registries in this process, with no socket: each is `createRegistry()` under a
 * made-up host (`in-process-N.invalid`), and {@linkcode registryTransport} hands a request for
 * such a host to its handler, like a name resolver, and any other request to the socket. An
 * opener over it reaches every test registry, so one opener can copy between two of them.
 *
 * @module
 */
import { httpTransport } from "../../src/transport/http_transport.ts";
import type { Transport } from "../../src/transport/request_body.ts";
import {
  createRegistry,
  type RegistryHandler,
} from "../../src/server/handler.ts";
import { createRegistryAuth } from "../../src/server/auth.ts";
import type { ServeRegistryOptions } from "../../src/server/serve.ts";

/** In-process registries by host (`host:port` as `URL.host` spells it). */
const HANDLERS = new Map<string, RegistryHandler>();
let started = 0;

/**
 * The bottom transport of test openers: a request to an in-process registry goes to its
 * handler, any other to the socket (`httpTransport`). A `.invalid` host never resolves, so a
 * request that misses the handler (a stopped registry, an opener not built on this) fails.
 */
export const registryTransport: Transport = (request) => {
  const handler = HANDLERS.get(new URL(request.url).host);
  return handler ? handler(request) : httpTransport(request);
};

/** A running in-process registry. */
export interface InProcessRegistry extends AsyncDisposable {
  /** `https://in-process-N.invalid`. */
  readonly url: string;
  /** `in-process-N.invalid`, for image references. */
  readonly host: string;
  /** The handler answering its requests. */
  readonly handler: RegistryHandler;
  /** Unregisters the host and closes the handler. */
  stop(): Promise<void>;
}

/**
 * Starts an embedded registry in this process (memory storage unless `options.storage`), with
 * the handler options and `auth` of `serveRegistry`; the socket options do not apply.
 */
export async function startInProcessRegistry(
  options: ServeRegistryOptions = {},
): Promise<InProcessRegistry> {
  const auth = options.auth === undefined
    ? undefined
    : await createRegistryAuth(options.auth);
  const handler = createRegistry({ ...options, auth });
  const host = `in-process-${++started}.invalid`;
  HANDLERS.set(host, handler);
  const stop = async () => {
    HANDLERS.delete(host);
    await handler.close();
  };
  return {
    url: `https://${host}`,
    host,
    handler,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
