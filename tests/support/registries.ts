/**
 * The same integration tests against several backends: the real CNCF distribution registry,
 * our embedded registry on a socket (in memory, and on disk as OCI layouts), and the embedded
 * registry in this process (`createRegistry()` as the transport, no socket).
 */
import { startDistribution } from "../../peers/distribution.ts";
import { registryTransport, startInProcessRegistry } from "./in_process.ts";
import { requirePeer } from "../../peers/available.ts";
import { serveRegistry } from "../../src/server/serve.ts";
import type { ServeRegistryOptions } from "../../src/server/serve.ts";
import { createOpener } from "../../src/transport/opener.ts";
import type { Transport } from "../../src/transport/request_body.ts";

/** A running registry of any backend. */
export interface TestRegistry extends AsyncDisposable {
  /** `http://host:port` (`https://in-process-N.invalid` in-process). */
  url: string;
  /** `host:port`, for image references. */
  host: string;
  /**
   * On the in-process backend, an opener (without credentials) that reaches it, and any other
   * test registry; undefined on socket backends, which the default opener reaches. Openers
   * built on `registryTransport` (`recordingOpener()`) reach every backend too.
   */
  opener?: Transport;
  stop(): Promise<void>;
}

/** Which registry a test runs against. */
export type Backend =
  | "distribution"
  | "embedded"
  | "embedded-layout"
  | "in-process";

/** Every backend. */
export const BACKENDS: readonly Backend[] = [
  "distribution",
  "embedded",
  "embedded-layout",
  "in-process",
];

/**
 * The backends on a socket: what a test needs when something outside this process talks to
 * the registry (the CLI, skopeo, umoci) or when it checks what only a socket sends.
 */
export const SOCKET_BACKENDS: readonly Backend[] = [
  "distribution",
  "embedded",
  "embedded-layout",
];

/** Starts a registry of a backend. */
export async function startRegistry(
  backend: Backend,
  options: ServeRegistryOptions = {},
): Promise<TestRegistry> {
  if (backend === "distribution") return await startDistribution();
  if (backend === "in-process") {
    const registry = await startInProcessRegistry(options);
    return {
      url: registry.url,
      host: registry.host,
      opener: createOpener({
        transport: registryTransport,
        credentials: () => Promise.resolve(undefined),
      }),
      stop: registry.stop,
      [Symbol.asyncDispose]: registry.stop,
    };
  }
  const root = backend === "embedded-layout"
    ? await Deno.makeTempDir({ prefix: "oci-embedded-" })
    : undefined;
  const server = await serveRegistry({ ...options, root });
  const stop = async () => {
    await server.shutdown();
    if (root) await Deno.remove(root, { recursive: true }).catch(() => {});
  };
  return {
    url: server.url,
    host: server.host,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * Registers one test per backend, named `name [backend]`. The test gets a function that starts
 * a registry of its backend (call it more than once for several registries).
 *
 * `backends` narrows the set. External peers (`peers`: skopeo, umoci) run in another process
 * and reach a registry only over a socket, so with peers the default is `SOCKET_BACKENDS`;
 * tests that drive the CLI name `SOCKET_BACKENDS` themselves.
 */
export function registryTest(
  name: string,
  fn: (start: () => Promise<TestRegistry>, backend: Backend) => Promise<void>,
  options: { peers?: string[]; backends?: readonly Backend[] } = {},
): void {
  const backends = options.backends ??
    (options.peers?.length ? SOCKET_BACKENDS : BACKENDS);
  for (const backend of backends) {
    const peers = [
      ...(options.peers ?? []),
      ...(backend === "distribution" ? ["docker-registry"] : []),
    ];
    Deno.test({
      name: `${name} [${backend}]`,
      ...requirePeer(...peers),
      fn: () => fn(() => startRegistry(backend), backend),
    });
  }
}
