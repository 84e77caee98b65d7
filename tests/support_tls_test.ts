/**
 * The HTTPS and proxy test infrastructure itself: throwaway certificates, distribution and the
 * embedded registry serving TLS, the token server over HTTPS, and the recording forward proxy,
 * reached with curl and with Deno's fetch.
 */
import assert from "node:assert/strict";
import { startConnectProxy } from "./support/connect_proxy.ts";
import {
  startDistribution,
  startTokenRegistry,
} from "../peers/distribution.ts";
import { requirePeer } from "../peers/available.ts";
import { makeTestTls, serveHttps, type TestTls } from "./support/tls.ts";
import { createRegistry } from "../src/server/handler.ts";

const decoder = new TextDecoder();

/** Runs curl with only PATH in its environment (no proxy variables): exit code, stdout, stderr. */
async function curl(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("curl", {
    args: ["--silent", "--show-error", "--max-time", "20", ...args],
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/** `GET url` with a client trusting `caCert` (and going through `proxy`): status and body. */
async function get(
  url: string,
  caCert: string,
  proxy?: Deno.Proxy,
): Promise<{ status: number; body: string }> {
  using client = Deno.createHttpClient({ caCerts: [caCert], proxy });
  const response = await fetch(url, { client });
  return { status: response.status, body: await response.text() };
}

/** The message of every error in a cause chain, joined. */
function causes(error: unknown): string {
  const parts: string[] = [];
  for (let e = error; e instanceof Error; e = e.cause) parts.push(e.message);
  return parts.join(": ");
}

async function subjectAltNames(certPath: string): Promise<string> {
  const out = await new Deno.Command("openssl", {
    args: ["x509", "-in", certPath, "-noout", "-ext", "subjectAltName"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return decoder.decode(out.stdout);
}

Deno.test({
  name:
    "makeTestTls() makes a CA and loopback server certificates, and removes them when disposed",
  ...requirePeer("openssl"),
  async fn() {
    let dir: string;
    {
      await using tls = await makeTestTls();
      dir = tls.dir;
      for (
        const pair of [
          tls.ca,
          tls.server,
          tls.untrustedCa,
          tls.untrustedServer,
          tls.expiredServer,
          tls.wrongHostServer,
        ]
      ) {
        assert.match(pair.cert, /^-----BEGIN CERTIFICATE-----\n/);
        assert.match(pair.key, /^-----BEGIN PRIVATE KEY-----\n/);
        assert.equal(await Deno.readTextFile(pair.certPath), pair.cert);
        assert.equal(await Deno.readTextFile(pair.keyPath), pair.key);
      }
      const names = await subjectAltNames(tls.server.certPath);
      assert.match(names, /IP Address:127\.0\.0\.1/);
      assert.match(names, /IP Address:0:0:0:0:0:0:0:1/);
      assert.match(names, /DNS:localhost/);
      assert.match(
        await subjectAltNames(tls.wrongHostServer.certPath),
        /DNS:wrong-host\.invalid/,
      );
      assert.notEqual(tls.ca.cert, tls.untrustedCa.cert);
    }
    await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
  },
});

Deno.test({
  name:
    "serveHttps(): fetch trusts the server certificate through caCerts and refuses the untrusted, expired and wrong-host ones",
  ...requirePeer("openssl"),
  async fn() {
    await using tls = await makeTestTls();
    await using good = serveHttps(() => new Response("ok"), {
      certificate: tls.server,
    });
    assert.match(good.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(await get(`${good.url}/`, tls.ca.cert), {
      status: 200,
      body: "ok",
    });
    const localhost = good.url.replace("127.0.0.1", "localhost");
    assert.equal((await get(`${localhost}/`, tls.ca.cert)).body, "ok");

    const refused = [
      [tls.untrustedServer, /UnknownIssuer|invalid peer certificate/i],
      [tls.expiredServer, /Expired|invalid peer certificate/i],
      [tls.wrongHostServer, /NotValidForName|invalid peer certificate/i],
    ] as const;
    for (const [certificate, expected] of refused) {
      await using bad = serveHttps(() => new Response("should not be read"), {
        certificate,
      });
      const error = await get(`${bad.url}/`, tls.ca.cert).then(
        () => undefined,
        (e) => e,
      );
      assert.ok(error instanceof TypeError, `${certificate.certPath} trusted`);
      assert.match(causes(error), expected);
    }
  },
});

Deno.test({
  name:
    "serveHttps(createRegistry()): the embedded registry answers /v2/ and stores a blob over HTTPS",
  ...requirePeer("openssl"),
  async fn() {
    await using tls = await makeTestTls();
    await using registry = serveHttps(createRegistry(), {
      certificate: tls.server,
    });
    using client = Deno.createHttpClient({ caCerts: [tls.ca.cert] });
    const v2 = await fetch(`${registry.url}/v2/`, { client });
    await v2.body?.cancel();
    assert.equal(v2.status, 200);
    const digest =
      "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    const put = await fetch(
      `${registry.url}/v2/app/blobs/uploads/?digest=${digest}`,
      { method: "POST", body: "hello", client },
    );
    await put.body?.cancel();
    assert.equal(put.status, 201);
    const out = await curl([
      "--cacert",
      tls.ca.certPath,
      `${registry.url}/v2/app/blobs/${digest}`,
    ]);
    assert.deepEqual([out.code, out.stdout], [0, "hello"]);
  },
});

/** Starts distribution over HTTPS with the test CA's server certificate. */
function startTlsDistribution(tls: TestTls) {
  return startDistribution({
    tls: { ...tls.server, caCert: tls.ca.cert },
  });
}

Deno.test({
  name:
    "startDistribution({ tls }) serves HTTPS: curl --cacert and fetch with caCerts get 200, curl without the CA is refused",
  ...requirePeer("docker-registry", "openssl", "curl"),
  async fn() {
    await using tls = await makeTestTls();
    await using registry = await startTlsDistribution(tls);
    assert.equal(registry.url, `https://${registry.host}`);
    assert.deepEqual(await get(`${registry.url}/v2/`, tls.ca.cert), {
      status: 200,
      body: "{}",
    });
    const trusted = await curl([
      "--cacert",
      tls.ca.certPath,
      "--write-out",
      " %{http_code}",
      `${registry.url}/v2/`,
    ]);
    assert.deepEqual([trusted.code, trusted.stdout], [0, "{} 200"]);
    const untrusted = await curl([
      "--cacert",
      tls.untrustedCa.certPath,
      `${registry.url}/v2/`,
    ]);
    // 60: the peer certificate cannot be authenticated with the CA certificates given.
    assert.equal(untrusted.code, 60, untrusted.stderr);
    const plain = await curl([
      "--write-out",
      "%{http_code}",
      registry.url.replace("https:", "http:") + "/v2/",
    ]);
    // Go's answer to plain HTTP on a TLS port.
    assert.equal(
      plain.stdout,
      "Client sent an HTTP request to an HTTPS server.\n400",
    );
  },
});

Deno.test({
  name:
    "startConnectProxy(): curl and fetch reach TLS distribution through CONNECT, and every tunnel is recorded",
  ...requirePeer("docker-registry", "openssl", "curl"),
  async fn() {
    await using tls = await makeTestTls();
    await using registry = await startTlsDistribution(tls);
    await using proxy = startConnectProxy();
    const out = await curl([
      "--cacert",
      tls.ca.certPath,
      "--proxy",
      proxy.url,
      `${registry.url}/v2/`,
    ]);
    assert.deepEqual([out.code, out.stdout], [0, "{}"], out.stderr);
    assert.deepEqual(
      await get(`${registry.url}/v2/_catalog`, tls.ca.cert, {
        url: proxy.url,
      }),
      { status: 200, body: '{"repositories":[]}\n' },
    );
    assert.deepEqual(
      proxy.records.map((r) => [r.method, r.target, r.user, r.status]),
      [
        ["CONNECT", registry.host, undefined, 200],
        ["CONNECT", registry.host, undefined, 200],
      ],
    );
    for (const record of proxy.records) {
      assert.ok(record.bytesUp > 0 && record.bytesDown > 0);
      // The registry's access log names this address as the client.
      assert.match(record.upstream!, /^127\.0\.0\.1:\d+$/);
    }
  },
});

Deno.test({
  name:
    "startConnectProxy(): absolute-URI plain HTTP requests are forwarded with their method and body, and recorded",
  ...requirePeer("docker-registry", "curl"),
  async fn() {
    await using registry = await startDistribution();
    await using proxy = startConnectProxy();
    const blob = "hello through the proxy\n";
    const digest = `sha256:${
      Array.from(
        new Uint8Array(
          await crypto.subtle.digest(
            "SHA-256",
            new TextEncoder().encode(blob),
          ),
        ),
        (b) => b.toString(16).padStart(2, "0"),
      ).join("")
    }`;
    using client = Deno.createHttpClient({ proxy: { url: proxy.url } });
    const started = await fetch(`${registry.url}/v2/app/blobs/uploads/`, {
      method: "POST",
      client,
    });
    await started.body?.cancel();
    assert.equal(started.status, 202);
    const location = new URL(started.headers.get("location")!, registry.url);
    location.searchParams.set("digest", digest);
    const put = await fetch(location, { method: "PUT", body: blob, client });
    await put.body?.cancel();
    assert.equal(put.status, 201);
    const out = await curl([
      "--proxy",
      proxy.url,
      `${registry.url}/v2/app/blobs/${digest}`,
    ]);
    assert.deepEqual([out.code, out.stdout], [0, blob], out.stderr);
    assert.deepEqual(
      proxy.records.map((
        r,
      ) => [r.method, r.target.replace(/\?.*/, ""), r.status]),
      [
        ["POST", `${registry.url}/v2/app/blobs/uploads/`, 202],
        ["PUT", location.href.replace(/\?.*/, ""), 201],
        ["GET", `${registry.url}/v2/app/blobs/${digest}`, 200],
      ],
    );
    assert.equal(proxy.records[1].bytesUp, blob.length);
  },
});

Deno.test({
  name:
    "startConnectProxy({ users }): 407 without or with wrong Basic credentials, a tunnel with them; the user is recorded",
  ...requirePeer("openssl", "curl"),
  async fn() {
    await using tls = await makeTestTls();
    await using server = serveHttps(() => new Response("ok"), {
      certificate: tls.server,
    });
    await using proxy = startConnectProxy({ users: { carol: "s3cret:x" } });
    const url = `${server.url}/`;
    const anonymous = await curl([
      "--cacert",
      tls.ca.certPath,
      "--proxy",
      proxy.url,
      url,
    ]);
    assert.notEqual(anonymous.code, 0);
    assert.match(anonymous.stderr, /407/);
    const wrong = await curl([
      "--cacert",
      tls.ca.certPath,
      "--proxy",
      proxy.url,
      "--proxy-user",
      "carol:nope",
      url,
    ]);
    assert.match(wrong.stderr, /407/);
    const right = await get(url, tls.ca.cert, {
      url: proxy.url,
      basicAuth: { username: "carol", password: "s3cret:x" },
    });
    assert.deepEqual(right, { status: 200, body: "ok" });
    assert.deepEqual(
      proxy.records.map((r) => [r.method, r.user, r.status]),
      [
        ["CONNECT", undefined, 407],
        ["CONNECT", "carol", 407],
        ["CONNECT", "carol", 200],
      ],
    );
  },
});

Deno.test(
  "startConnectProxy() answers 502 for a refused port and for hosts off loopback, without looking names up",
  async () => {
    await using proxy = startConnectProxy();
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = closed.addr.port;
    closed.close();
    for (const target of [`127.0.0.1:${port}`, "nonexistent.invalid:443"]) {
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: Number(proxy.host.split(":")[1]),
      });
      await conn.write(
        new TextEncoder().encode(
          `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`,
        ),
      );
      const buffer = new Uint8Array(1024);
      const read = await conn.read(buffer);
      conn.close();
      assert.match(
        decoder.decode(buffer.subarray(0, read ?? 0)),
        /^HTTP\/1\.1 502 /,
      );
    }
    assert.deepEqual(proxy.records.map((r) => [r.target, r.status]), [
      [`127.0.0.1:${port}`, 502],
      ["nonexistent.invalid:443", 502],
    ]);
  },
);

Deno.test({
  name:
    "startTokenRegistry() with TLS on both: an https realm, and a token from it opens the registry",
  ...requirePeer("docker-registry", "openssl"),
  async fn() {
    await using tls = await makeTestTls();
    await using setup = await startTokenRegistry({
      tls: tls.server,
      distribution: { tls: { ...tls.server, caCert: tls.ca.cert } },
    });
    const { registry, tokens } = setup;
    assert.match(tokens.realm, /^https:\/\/127\.0\.0\.1:\d+\/token$/);
    using client = Deno.createHttpClient({ caCerts: [tls.ca.cert] });
    const challenged = await fetch(`${registry.url}/v2/`, { client });
    await challenged.body?.cancel();
    assert.equal(challenged.status, 401);
    assert.match(
      challenged.headers.get("www-authenticate")!,
      new RegExp(`^Bearer realm="${tokens.realm}"`),
    );
    const answer = await fetch(`${tokens.realm}?service=${tokens.service}`, {
      client,
    });
    const { token } = await answer.json();
    const opened = await fetch(`${registry.url}/v2/`, {
      client,
      headers: { authorization: `Bearer ${token}` },
    });
    await opened.body?.cancel();
    assert.equal(opened.status, 200);
  },
});
