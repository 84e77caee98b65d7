// Real networks: HTTPS with a CA made here (the real distribution registry and our embedded one
// behind TLS, token auth over HTTPS), a private CA given by DENO_CERT or --ca-file, and a real
// forward proxy that every request goes through. The CLI runs as a subprocess with exactly the
// grants of `deno task oci`, and with NODE_EXTRA_CA_CERTS as this machine sets it.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { createRegistry } from "../../src/server/handler.ts";
import { createHttpTransport } from "../../src/transport/http_transport.ts";
import {
  bypassesProxy,
  proxyFor,
  proxySettingsFromEnv,
} from "../../src/transport/proxy.ts";
import { type CliRun, runCli } from "../support/cli.ts";
import { startConnectProxy } from "../support/connect_proxy.ts";
import {
  startDistribution,
  startTokenRegistry,
} from "../../peers/distribution.ts";
import { requirePeer } from "../../peers/available.ts";
import { makeTestTls, serveHttps, type TestTls } from "../support/tls.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The permission flags of the `oci` task in deno.json, exactly. */
async function taskGrants(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const command: string = config.tasks.oci.command ?? config.tasks.oci;
  return command.split(/\s+/).filter((part) => part.startsWith("--"));
}

/** The environment of a run: this machine's NODE_EXTRA_CA_CERTS, no update check, and `env`. */
function machineEnv(env: Record<string, string>): Record<string, string> {
  const extra = Deno.env.get("NODE_EXTRA_CA_CERTS") ??
    "/etc/ssl/certs/ca-certificates.crt";
  // Deno's own update check would go through the proxy too (to dl.deno.land).
  return { NODE_EXTRA_CA_CERTS: extra, DENO_NO_UPDATE_CHECK: "1", ...env };
}

/** Runs the CLI with the task's grants; a failure quotes what it printed. */
async function oci(
  args: string[],
  env: Record<string, string> = {},
): Promise<CliRun> {
  return await runCli(args, {
    permissions: await taskGrants(),
    env: machineEnv(env),
  });
}

async function ociOk(
  args: string[],
  env: Record<string, string> = {},
): Promise<CliRun> {
  const run = await oci(args, env);
  assert.equal(
    run.code,
    0,
    `oci ${args.join(" ")} exited ${run.code}:\n${run.stderr}`,
  );
  return run;
}

/** A directory with a small file to push, and a cache; removed on dispose. */
async function workDir(): Promise<
  { dir: string; content: string } & AsyncDisposable
> {
  const dir = await Deno.makeTempDir({ prefix: "oci-network-" });
  const content = `hello ${crypto.randomUUID()}\n`;
  await Deno.mkdir(`${dir}/prefix`);
  await Deno.writeTextFile(`${dir}/prefix/hello.txt`, content);
  return {
    dir,
    content,
    [Symbol.asyncDispose]: () =>
      Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
}

/** Push, tags, copy to another repository, pull: the main road, over `host` with `trust`. */
async function roundTrip(
  host: string,
  trust: { env?: Record<string, string>; flags?: string[] },
): Promise<void> {
  await using work = await workDir();
  const env = trust.env ?? {};
  const flags = [...trust.flags ?? [], "--cache", `${work.dir}/cache`];
  await ociOk(
    ["push", `${work.dir}/prefix`, `oci://${host}/net/app:v1`, ...flags],
    env,
  );
  const tags = await ociOk(["tags", `oci://${host}/net/app`, ...flags], env);
  assert.match(tags.stdout, /^v1$/m);
  await ociOk([
    "copy",
    `oci://${host}/net/app:v1`,
    `oci://${host}/net/copy:v2`,
    ...flags,
  ], env);
  await ociOk(
    ["pull", `oci://${host}/net/copy:v2`, `${work.dir}/out`, ...flags],
    env,
  );
  assert.equal(
    await Deno.readTextFile(`${work.dir}/out/hello.txt`),
    work.content,
  );
}

function trustVariants(tls: TestTls) {
  return [
    { name: "DENO_CERT", env: { DENO_CERT: tls.ca.certPath } },
    { name: "--ca-file", flags: ["--ca-file", tls.ca.certPath] },
  ];
}

Deno.test("distribution over TLS: push, tags, copy and pull with DENO_CERT and with --ca-file", async (t) => {
  if (!requirePeer("docker-registry") || !requirePeer("openssl")) return;
  await using tls = await makeTestTls();
  await using registry = await startDistribution({
    tls: {
      certPath: tls.server.certPath,
      keyPath: tls.server.keyPath,
      caCert: tls.ca.cert,
    },
  });
  for (const variant of trustVariants(tls)) {
    await t.step(variant.name, () => roundTrip(registry.host, variant));
  }
});

Deno.test("oci serve's handler behind TLS: push, tags, copy and pull with DENO_CERT and with --ca-file", async (t) => {
  if (!requirePeer("openssl")) return;
  await using tls = await makeTestTls();
  await using registry = serveHttps(createRegistry(), {
    certificate: tls.server,
  });
  for (const variant of trustVariants(tls)) {
    await t.step(variant.name, () => roundTrip(registry.host, variant));
  }
});

Deno.test("token auth over TLS: registry and token server both HTTPS, trusted by --ca-file", async () => {
  if (!requirePeer("docker-registry") || !requirePeer("openssl")) return;
  await using tls = await makeTestTls();
  await using setup = await startTokenRegistry({
    users: { bob: "builder" },
    tls: tls.server,
    distribution: {
      tls: {
        certPath: tls.server.certPath,
        keyPath: tls.server.keyPath,
        caCert: tls.ca.cert,
      },
    },
  });
  assert.match(setup.tokens.realm, /^https:/);
  await roundTrip(setup.registry.host, {
    env: { OCI_USERNAME: "bob", OCI_PASSWORD: "builder" },
    flags: ["--ca-file", tls.ca.certPath],
  });
  assert.ok(setup.tokens.requests.length > 0);
});

Deno.test("a certificate the client must refuse fails naming the certificate problem", async (t) => {
  if (!requirePeer("openssl")) return;
  await using tls = await makeTestTls();
  const transport = createHttpTransport({ caCerts: [tls.ca.cert] });
  const cases = [
    { certificate: tls.untrustedServer, problem: /UnknownIssuer/ },
    { certificate: tls.expiredServer, problem: /Expired/ },
    { certificate: tls.wrongHostServer, problem: /not valid for name/ },
  ];
  for (const { certificate, problem } of cases) {
    await t.step(String(problem), async () => {
      await using registry = serveHttps(createRegistry(), { certificate });
      const url = `${registry.url}/v2/`;
      const error = await transport(new Request(url)).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error instanceof Error);
      assert.match(error.message, /certificate/);
      assert.match(error.message, problem);
      assert.ok(error.message.includes(url), error.message);
    });
  }
  // The CLI says the same (it retries network errors today: issue 12 item 4 makes this quick).
  await using registry = serveHttps(createRegistry(), {
    certificate: tls.untrustedServer,
  });
  await using work = await workDir();
  const run = await oci([
    "tags",
    `oci://${registry.host}/net/app`,
    "--ca-file",
    tls.ca.certPath,
    "--cache",
    `${work.dir}/cache`,
  ]);
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /invalid peer certificate: UnknownIssuer/);
  assert.ok(run.stderr.includes(registry.host), run.stderr);
});

Deno.test("--ca-file that is missing or not PEM is one clear line", async () => {
  await using work = await workDir();
  await Deno.writeTextFile(`${work.dir}/not.pem`, "hello");
  for (
    const [path, message] of [
      [`${work.dir}/missing.pem`, /Cannot read the CA file/],
      [`${work.dir}/not.pem`, /holds no PEM certificate/],
    ] as const
  ) {
    const run = await oci([
      "tags",
      "oci://127.0.0.1:1/net/app",
      "--ca-file",
      path,
      "--cache",
      `${work.dir}/cache`,
    ]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, message);
  }
});

/** The embedded registry on plain HTTP, recording each request's method, path and client. */
function recordingRegistry() {
  const seen: { method: string; path: string; client: string }[] = [];
  const handler = createRegistry();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request, info) => {
      const addr = info.remoteAddr as Deno.NetAddr;
      seen.push({
        method: request.method,
        path: new URL(request.url).pathname,
        client: `${addr.hostname}:${addr.port}`,
      });
      return handler(request);
    },
  );
  return {
    host: `127.0.0.1:${server.addr.port}`,
    seen,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** Every request the registry saw came from one of the proxy's upstream connections. */
function assertAllProxied(
  seen: { method: string; path: string; client: string }[],
  upstreams: (string | undefined)[],
): void {
  const through = new Set(upstreams);
  const direct = seen.filter((r) => !through.has(r.client));
  assert.deepEqual(direct, [], "requests that bypassed the proxy");
}

Deno.test("HTTP_PROXY: every request of a push and a pull goes through the proxy (POST, PUT, HEAD, GET)", async (t) => {
  for (const name of ["HTTP_PROXY", "http_proxy"]) {
    await t.step(name, async () => {
      await using registry = recordingRegistry();
      await using proxy = startConnectProxy();
      await using work = await workDir();
      const env = { [name]: proxy.url };
      const cache = ["--cache", `${work.dir}/cache`];
      const ref = `${registry.host}/net/app:v1`;
      await ociOk(["push", `${work.dir}/prefix`, ref, ...cache], env);
      await ociOk(
        ["pull", ref, `${work.dir}/out`, "--cache", `${work.dir}/c2`],
        env,
      );
      assert.ok(registry.seen.length > 0);
      assertAllProxied(registry.seen, proxy.records.map((r) => r.upstream));
      const methods = new Set(proxy.records.map((r) => r.method));
      for (const method of ["POST", "PUT", "HEAD", "GET"]) {
        assert.ok(
          methods.has(method),
          `${method} went through the proxy: ${[...methods]}`,
        );
      }
      assert.ok(
        proxy.records.every((r) =>
          r.target.startsWith(`http://${registry.host}/`)
        ),
      );
      assert.equal(
        await Deno.readTextFile(`${work.dir}/out/hello.txt`),
        work.content,
      );
    });
  }
});

/** The embedded registry behind TLS, recording each request's client address. */
function recordingTlsRegistry(tls: TestTls) {
  const seen: { method: string; path: string; client: string }[] = [];
  const handler = createRegistry();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: tls.server.cert,
    key: tls.server.key,
    onListen() {},
  }, (request, info) => {
    const addr = info.remoteAddr as Deno.NetAddr;
    seen.push({
      method: request.method,
      path: new URL(request.url).pathname,
      client: `${addr.hostname}:${addr.port}`,
    });
    return handler(request);
  });
  return {
    host: `127.0.0.1:${server.addr.port}`,
    seen,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

Deno.test("HTTPS_PROXY: every request of a push and a pull over TLS goes through CONNECT tunnels", async (t) => {
  if (!requirePeer("openssl")) return;
  await using tls = await makeTestTls();
  for (const name of ["HTTPS_PROXY", "https_proxy"]) {
    await t.step(name, async () => {
      await using registry = recordingTlsRegistry(tls);
      await using proxy = startConnectProxy();
      await using work = await workDir();
      const env = { [name]: proxy.url, DENO_CERT: tls.ca.certPath };
      const ref = `oci://${registry.host}/net/app:v1`;
      await ociOk([
        "push",
        `${work.dir}/prefix`,
        ref,
        "--cache",
        `${work.dir}/cache`,
      ], env);
      await ociOk(
        ["pull", ref, `${work.dir}/out`, "--cache", `${work.dir}/c2`],
        env,
      );
      const methods = new Set(registry.seen.map((r) => r.method));
      for (const method of ["POST", "PUT", "HEAD", "GET"]) {
        assert.ok(
          methods.has(method),
          `${method} reached the registry: ${[...methods]}`,
        );
      }
      assertAllProxied(registry.seen, proxy.records.map((r) => r.upstream));
      assert.deepEqual(
        proxy.records.filter((r) =>
          r.method !== "CONNECT" || r.target !== registry.host ||
          r.status !== 200
        ),
        [],
      );
    });
  }
});

Deno.test("NO_PROXY exempts the hosts it lists, and only those", async (t) => {
  const cases = [
    { noProxy: "127.0.0.1", proxied: false },
    { noProxy: "example.com, 127.0.0.1:1,*.corp", proxied: true },
    { noProxy: "localhost", proxied: true },
    { noProxy: "*", proxied: false },
    { noProxy: "127.0.0.0/8", proxied: false },
  ];
  for (const { noProxy, proxied } of cases) {
    await t.step(
      `NO_PROXY=${noProxy}: ${proxied ? "proxied" : "direct"}`,
      async () => {
        await using registry = recordingRegistry();
        await using proxy = startConnectProxy();
        await using work = await workDir();
        const env = { HTTP_PROXY: proxy.url, NO_PROXY: noProxy };
        await ociOk([
          "push",
          `${work.dir}/prefix`,
          `${registry.host}/net/app:v1`,
          "--cache",
          `${work.dir}/cache`,
        ], env);
        if (proxied) {
          assertAllProxied(registry.seen, proxy.records.map((r) => r.upstream));
        } else assert.deepEqual(proxy.records, []);
      },
    );
  }
});

Deno.test("proxy credentials from the proxy URL go as Proxy-Authorization; wrong ones fail naming the proxy", async () => {
  if (!requirePeer("openssl")) return;
  await using tls = await makeTestTls();
  await using registry = recordingTlsRegistry(tls);
  await using proxy = startConnectProxy({ users: { alice: "s3cret" } });
  await using work = await workDir();
  const ref = `oci://${registry.host}/net/app:v1`;
  const cache = ["--cache", `${work.dir}/cache`];
  const withUser = (password: string) => ({
    HTTPS_PROXY: `http://alice:${password}@${proxy.host}`,
    DENO_CERT: tls.ca.certPath,
  });
  await ociOk(
    ["push", `${work.dir}/prefix`, ref, ...cache],
    withUser("s3cret"),
  );
  assert.ok(proxy.records.length > 0);
  assert.ok(proxy.records.every((r) => r.user === "alice" && r.status === 200));
  assertAllProxied(registry.seen, proxy.records.map((r) => r.upstream));
  const run = await oci(["tags", ref, ...cache], withUser("hunter2x"));
  assert.equal(run.code, 1);
  assert.match(run.stderr, /407/);
  assert.match(run.stderr, new RegExp(proxy.host.replace(/\./g, "\\.")));
  assert.doesNotMatch(run.stderr, /hunter2x/);
});

Deno.test("the library: caCerts and an explicit proxy on createHttpTransport", async () => {
  if (!requirePeer("openssl")) return;
  await using tls = await makeTestTls();
  await using registry = recordingTlsRegistry(tls);
  await using proxy = startConnectProxy();
  const transport = createHttpTransport({
    caCerts: [tls.ca.cert],
    proxy: { https: proxy.url },
  });
  const response = await transport(new Request(`https://${registry.host}/v2/`));
  await response.body?.cancel();
  assert.equal(response.status, 200);
  assert.deepEqual(proxy.records.map((r) => r.method), ["CONNECT"]);
  const direct = createHttpTransport({ caCerts: [tls.ca.cert], proxy: false });
  const again = await direct(new Request(`https://${registry.host}/v2/`));
  await again.body?.cancel();
  assert.equal(proxy.records.length, 1);
  const untrusting = createHttpTransport({ proxy: false });
  await assert.rejects(
    untrusting(new Request(`https://${registry.host}/v2/`)),
    /UnknownIssuer/,
  );
});

Deno.test("proxy settings: lower-case wins, ALL_PROXY fills in, NO_PROXY forms", () => {
  const env: Record<string, string> = {
    HTTP_PROXY: "http://upper:1",
    http_proxy: "http://lower:2",
    ALL_PROXY: "http://all:3",
    no_proxy: " internal.example ,[::1]:5000",
  };
  const settings = proxySettingsFromEnv((name) => env[name]);
  assert.deepEqual(settings, {
    https: "http://all:3",
    http: "http://lower:2",
    noProxy: "internal.example ,[::1]:5000",
  });
  assert.equal(
    proxyFor(new URL("http://ghcr.io/"), settings)?.hostname,
    "lower",
  );
  assert.equal(
    proxyFor(new URL("https://a.internal.example/"), settings),
    undefined,
  );
  assert.equal(proxyFor(new URL("http://[::1]:5000/"), settings), undefined);
  assert.equal(proxyFor(new URL("http://[::1]:5001/"), settings)?.port, 2);
  assert.ok(
    bypassesProxy(new URL("https://INTERNAL.example./"), "internal.example"),
  );
  assert.ok(
    !bypassesProxy(new URL("https://notinternal.example/"), "internal.example"),
  );
  assert.ok(bypassesProxy(new URL("https://x.corp/"), ".corp"));
  assert.ok(bypassesProxy(new URL("https://corp/"), ".corp"));
  assert.ok(bypassesProxy(new URL("https://ghcr.io/"), "ghcr.io:443"));
  assert.ok(!bypassesProxy(new URL("https://ghcr.io/"), "ghcr.io:80"));
  assert.ok(!bypassesProxy(new URL("http://10.0.0.1/"), "10.0.0.0/33"));
  assert.ok(!bypassesProxy(new URL("http://11.0.0.1/"), "10.0.0.0/8"));
  assert.ok(bypassesProxy(new URL("http://1.2.3.4/"), "0.0.0.0/0"));
  assert.deepEqual(proxySettingsFromEnv(() => ""), {
    https: undefined,
    http: undefined,
    noProxy: undefined,
  });
});

Deno.test("proxy variables not granted by --allow-env count as unset", async () => {
  await using registry = recordingRegistry();
  await using proxy = startConnectProxy();
  await using work = await workDir();
  const grants = (await taskGrants()).map((flag) =>
    flag.startsWith("--allow-env=")
      ? flag.replace(
        /,(HTTPS?_PROXY|https?_proxy|ALL_PROXY|all_proxy|NO_PROXY|no_proxy)\b/g,
        "",
      )
      : flag
  );
  assert.ok(!grants.some((flag) => /PROXY/i.test(flag)));
  const run = await runCli([
    "push",
    `${work.dir}/prefix`,
    `${registry.host}/net/app:v1`,
    "--cache",
    `${work.dir}/cache`,
  ], { permissions: grants, env: machineEnv({ HTTP_PROXY: proxy.url }) });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(proxy.records, []);
  assert.ok(registry.seen.length > 0);
});
