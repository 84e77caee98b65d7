/**
 * Real programs the integration tests and the benchmark talk to (the CNCF distribution
 * registry, skopeo, umoci, openssl, htpasswd), looked for on `PATH`. A test that needs a
 * missing one is ignored with one message per program, except when peers are required
 * (`OCI_TEST_REQUIRE_PEERS=1`, which CI sets, or `CI`): then the test runs, and the launcher
 * fails it with an error naming the program and how to install it.
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
  strace: "apt-get install strace",
  pigz: "apt-get install pigz",
  zstd: "apt-get install zstd",
};

function installHint(tool: string): string {
  return INSTALL_HINTS[tool] ?? `install ${tool}`;
}

/**
 * Tells whether missing peers fail tests instead of skipping them: true when
 * `OCI_TEST_REQUIRE_PEERS=1` or `CI` is set to anything but `""`, `0` or `false`.
 *
 * @returns Whether peers are required.
 *
 * @example Required when OCI_TEST_REQUIRE_PEERS is 1
 * ```ts
 * import assert from "node:assert/strict";
 * import { peersRequired } from "./available.ts";
 *
 * assert.equal(typeof peersRequired(), "boolean");
 * ```
 */
export function peersRequired(): boolean {
  const ci = Deno.env.get("CI");
  return Deno.env.get("OCI_TEST_REQUIRE_PEERS") === "1" ||
    (ci !== undefined && ci !== "" && ci !== "false" && ci !== "0");
}

/**
 * Tells whether a program is an executable file on `PATH` (the answer is cached per process).
 *
 * @param tool The program's name, such as `docker-registry`.
 * @returns Whether it can be run.
 *
 * @example Look for a program
 * ```ts
 * import assert from "node:assert/strict";
 * import { peerAvailable } from "./available.ts";
 *
 * assert.equal(peerAvailable("no-such-program-for-oci-tests"), false);
 * ```
 */
export function peerAvailable(tool: string): boolean {
  let known = found.get(tool);
  if (known === undefined) {
    const path = Deno.env.get("PATH") ?? "";
    known = path.split(":").some((dir) => {
      if (dir === "") return false;
      try {
        const info = Deno.statSync(`${dir}/${tool}`);
        return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
      } catch {
        return false;
      }
    });
    found.set(tool, known);
  }
  return known;
}

/**
 * Options for `Deno.test` that ignore a test when a program it needs is missing, printing one
 * message per program (`skipping tests that need docker-registry: not installed (apt-get install
 * docker-registry)`). When peers are required ({@linkcode peersRequired}) the test is not
 * ignored, so it runs and fails on the launcher's {@linkcode assertPeer} error.
 *
 * @param tools The programs the test needs.
 * @returns `{ ignore }`, to spread into `Deno.test` options.
 *
 * @example Ignore a test when its program is missing
 * ```ts
 * import assert from "node:assert/strict";
 * import { peersRequired, requirePeer } from "./available.ts";
 *
 * const { ignore } = requirePeer("no-such-program-for-oci-tests");
 * assert.equal(ignore, !peersRequired());
 * ```
 */
export function requirePeer(...tools: string[]): { ignore: boolean } {
  const missing = tools.filter((tool) => !peerAvailable(tool));
  if (missing.length === 0 || peersRequired()) return { ignore: false };
  for (const tool of missing) {
    if (reported.has(tool)) continue;
    reported.add(tool);
    console.warn(
      `skipping tests that need ${tool}: not installed (${installHint(tool)})`,
    );
  }
  return { ignore: true };
}

/**
 * Throws when a program is missing, saying how to install it; launchers call it first, so a
 * test that peers-required mode did not ignore fails with this message.
 *
 * @param tool The program's name.
 * @throws {Error} When the program is not on `PATH`.
 *
 * @example Fail clearly on a missing program
 * ```ts
 * import assert from "node:assert/strict";
 * import { assertPeer } from "./available.ts";
 *
 * assert.throws(
 *   () => assertPeer("no-such-program-for-oci-tests"),
 *   /Cannot run no-such-program-for-oci-tests: it is not installed/,
 * );
 * ```
 */
export function assertPeer(tool: string): void {
  if (peerAvailable(tool)) return;
  const why = peersRequired()
    ? " and OCI_TEST_REQUIRE_PEERS=1 (or CI) forbids skipping the test"
    : "";
  throw new Error(
    `Cannot run ${tool}: it is not installed (${installHint(tool)})${why}`,
  );
}

/**
 * Finds a TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read, closed).
 * Another process may take it before the caller binds it; launchers retry on that.
 *
 * @returns The port number.
 *
 * @example Get a free port
 * ```ts
 * import assert from "node:assert/strict";
 * import { freePort } from "./available.ts";
 *
 * const port = freePort();
 * assert.ok(port > 0 && port < 65536);
 * ```
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}
