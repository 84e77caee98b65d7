/**
 * Real peers the integration tests use (the CNCF distribution registry, skopeo, umoci, openssl,
 * htpasswd): a test that needs a missing one is ignored with a message, except in CI (`CI` or
 * `OCI_TEST_REQUIRE_PEERS=1`), where it runs and fails.
 *
 * @module
 */

const found = new Map<string, boolean>();
const reported = new Set<string>();

const INSTALL_HINTS: Record<string, string> = {
  "docker-registry": "apt-get install docker-registry",
  skopeo: "apt-get install skopeo",
  umoci: "apt-get install umoci",
  htpasswd: "apt-get install apache2-utils",
  openssl: "apt-get install openssl",
};

/** True when peers must be present: in CI, a missing tool fails instead of skipping. */
export function peersRequired(): boolean {
  const ci = Deno.env.get("CI");
  return Deno.env.get("OCI_TEST_REQUIRE_PEERS") === "1" ||
    (ci !== undefined && ci !== "" && ci !== "false" && ci !== "0");
}

/** Tells whether a program is on PATH. */
export function peerAvailable(tool: string): boolean {
  let known = found.get(tool);
  if (known === undefined) {
    const path = Deno.env.get("PATH") ?? "";
    known = path.split(":").some((dir) => {
      try {
        return Deno.statSync(`${dir}/${tool}`).isFile;
      } catch {
        return false;
      }
    });
    found.set(tool, known);
  }
  return known;
}

/**
 * Options for `Deno.test` that ignore a test when a tool is missing, with one message per tool;
 * when peers are required the test runs (and fails on the missing tool).
 */
export function requirePeer(...tools: string[]): { ignore: boolean } {
  const missing = tools.filter((tool) => !peerAvailable(tool));
  if (missing.length === 0 || peersRequired()) return { ignore: false };
  for (const tool of missing) {
    if (reported.has(tool)) continue;
    reported.add(tool);
    console.warn(
      `skipping tests that need ${tool}: not installed (${
        INSTALL_HINTS[tool] ?? "install it"
      })`,
    );
  }
  return { ignore: true };
}

/** Throws a clear error when a required tool is missing (used by launchers in CI). */
export function assertPeer(tool: string): void {
  if (!peerAvailable(tool)) {
    throw new Error(
      `${tool} is required but not installed (${
        INSTALL_HINTS[tool] ?? "install it"
      })`,
    );
  }
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
