/**
 * The same integration tests against two backends: the real CNCF distribution registry and our
 * embedded registry (in memory, and on disk as OCI layouts).
 */
import { startDistribution } from "../../peers/distribution.ts";
import { requirePeer } from "../../peers/available.ts";
import { serveRegistry } from "../../src/server/serve.ts";
import type { ServeRegistryOptions } from "../../src/server/serve.ts";

/** A running registry of any backend. */
export interface TestRegistry extends AsyncDisposable {
  url: string;
  host: string;
  stop(): Promise<void>;
}

/** Which registry a test runs against. */
export type Backend = "distribution" | "embedded" | "embedded-layout";

/** Every backend. */
export const BACKENDS: readonly Backend[] = [
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
 */
export function registryTest(
  name: string,
  fn: (start: () => Promise<TestRegistry>, backend: Backend) => Promise<void>,
  options: { peers?: string[]; backends?: readonly Backend[] } = {},
): void {
  for (const backend of options.backends ?? BACKENDS) {
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
