// Smoke tests of the launchers in peers/ (the real distribution registry, our token
// server, the peer checks), with plain fetch so that no project code is under test here.
import assert from "node:assert/strict";
import {
  type Distribution,
  startDistribution,
  startTokenRegistry,
} from "../peers/distribution.ts";
import {
  assertPeer,
  freePort,
  peerAvailable,
  peersRequired,
  requirePeer,
} from "../peers/available.ts";
import { startTokenServer, type TokenServer } from "../peers/token_server.ts";

/** Runs `fn`, printing the registry's log when it fails. */
async function withLogs(
  registry: Distribution,
  fn: () => Promise<void>,
): Promise<void> {
  try {
    await fn();
  } catch (error) {
    console.error(`docker-registry log:\n${registry.logs()}`);
    throw error;
  }
}

/** A token from the realm for `scope`, with Basic credentials when given. */
async function getToken(
  tokens: TokenServer,
  scope: string | undefined,
  credentials?: string,
): Promise<string> {
  const url = new URL(tokens.realm);
  url.searchParams.set("service", tokens.service);
  if (scope) url.searchParams.set("scope", scope);
  const response = await fetch(url, {
    headers: credentials ? { authorization: `Basic ${btoa(credentials)}` } : {},
  });
  assert.equal(response.status, 200, await response.clone().text());
  const body = await response.json();
  assert.equal(typeof body.token, "string");
  return body.token;
}

/** The decoded header (0) or claims (1) of a JWT. */
function jwtPart(token: string, index: 0 | 1) {
  const part = token.split(".")[index];
  return JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
}

function bearer(token: string): HeadersInit {
  return { authorization: `Bearer ${token}` };
}

async function status(response: Response): Promise<number> {
  await response.body?.cancel();
  return response.status;
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${
    Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

Deno.test({
  name:
    "startDistribution() serves an anonymous registry on 127.0.0.1 and stop() removes its files",
  ...requirePeer("docker-registry"),
  async fn() {
    const registry = await startDistribution();
    try {
      assert.match(registry.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(registry.url, `http://${registry.host}`);
      const response = await fetch(`${registry.url}/v2/`);
      assert.equal(response.status, 200);
      assert.equal(
        response.headers.get("docker-distribution-api-version"),
        "registry/2.0",
      );
      assert.deepEqual(await response.json(), {});
    } finally {
      await registry.stop();
    }
    await registry.stop();
    await assert.rejects(Deno.stat(registry.root), Deno.errors.NotFound);
    assert.match(registry.logs(), /listening on 127\.0\.0\.1:\d+/);
  },
});

Deno.test({
  name:
    "startDistribution() with htpasswd answers 401 Basic, 200 for the password and 401 for a wrong one",
  ...requirePeer("docker-registry", "htpasswd"),
  async fn() {
    await using registry = await startDistribution({
      auth: { htpasswd: { alice: "correct horse", bob: "b:with colon" } },
    });
    await withLogs(registry, async () => {
      const anonymous = await fetch(`${registry.url}/v2/`);
      assert.equal(anonymous.status, 401);
      assert.equal(
        anonymous.headers.get("www-authenticate"),
        'Basic realm="oci-test"',
      );
      assert.deepEqual(await anonymous.json(), {
        errors: [{
          code: "UNAUTHORIZED",
          message: "authentication required",
          detail: null,
        }],
      });
      const basic = (credentials: string) =>
        fetch(`${registry.url}/v2/`, {
          headers: { authorization: `Basic ${btoa(credentials)}` },
        });
      assert.equal(await status(await basic("alice:correct horse")), 200);
      assert.equal(await status(await basic("bob:b:with colon")), 200);
      const wrong = await basic("alice:wrong");
      assert.equal(wrong.status, 401);
      assert.equal(
        wrong.headers.get("www-authenticate"),
        'Basic realm="oci-test"',
      );
      await wrong.body?.cancel();
    });
  },
});

Deno.test({
  name:
    "startDistribution() rejects with the registry's output when it cannot start",
  ...requirePeer("docker-registry"),
  async fn() {
    await assert.rejects(
      startDistribution({ env: { REGISTRY_LOG_LEVEL: "loud" } }),
      /Cannot start docker-registry: it exited with code 1\n.*invalid loglevel loud/,
    );
  },
});

Deno.test({
  name:
    "startTokenRegistry(): a Bearer challenge, a token for Basic credentials, then 200",
  ...requirePeer("docker-registry", "openssl"),
  async fn() {
    await using setup = await startTokenRegistry({ users: { bob: "builder" } });
    const { registry, tokens } = setup;
    await withLogs(registry, async () => {
      const challenged = await fetch(`${registry.url}/v2/`);
      assert.equal(challenged.status, 401);
      assert.equal(
        challenged.headers.get("www-authenticate"),
        `Bearer realm="${tokens.realm}",service="${tokens.service}"`,
      );
      await challenged.body?.cancel();

      const token = await getToken(tokens, undefined, "bob:builder");
      const header = jwtPart(token, 0);
      const claims = jwtPart(token, 1);
      assert.equal(header.alg, "RS256");
      assert.equal(header.x5c.length, 1);
      assert.equal(claims.aud, tokens.service);
      assert.equal(claims.iss, tokens.issuer);
      assert.equal(claims.sub, "bob");
      assert.equal(claims.exp - claims.iat, 300);

      const response = await fetch(`${registry.url}/v2/`, {
        headers: bearer(token),
      });
      assert.equal(response.status, 200);
      await response.body?.cancel();
      assert.deepEqual(tokens.requests, [{
        url: `${tokens.realm}?service=${tokens.service}`,
        authorized: true,
        user: "bob",
        scopes: [],
        status: 200,
      }]);
    });
  },
});

Deno.test({
  name:
    "startTokenRegistry(): a push token uploads a blob with POST and PUT; a pull token gets insufficient_scope",
  ...requirePeer("docker-registry", "openssl"),
  async fn() {
    await using setup = await startTokenRegistry({ users: { bob: "builder" } });
    const { registry, tokens } = setup;
    await withLogs(registry, async () => {
      const uploads = `${registry.url}/v2/smoke/app/blobs/uploads/`;
      const challenged = await fetch(uploads, { method: "POST" });
      assert.equal(challenged.status, 401);
      // Distribution lists the actions in no fixed order.
      assert.match(
        challenged.headers.get("www-authenticate")!,
        /,scope="repository:smoke\/app:(pull,push|push,pull)"$/,
      );
      await challenged.body?.cancel();

      const pullOnly = await getToken(tokens, "repository:smoke/app:pull,push");
      const refused = await fetch(uploads, {
        method: "POST",
        headers: bearer(pullOnly),
      });
      assert.equal(refused.status, 401);
      assert.match(
        refused.headers.get("www-authenticate")!,
        /,error="insufficient_scope"$/,
      );
      const body = await refused.json();
      assert.equal(body.errors[0].code, "UNAUTHORIZED");
      assert.deepEqual(
        body.errors[0].detail.map((d: { Action: string }) => d.Action).sort(),
        ["pull", "push"],
      );

      const push = await getToken(
        tokens,
        "repository:smoke/app:pull,push",
        "bob:builder",
      );
      const started = await fetch(uploads, {
        method: "POST",
        headers: bearer(push),
      });
      assert.equal(started.status, 202);
      await started.body?.cancel();
      const location = new URL(started.headers.get("location")!, registry.url);
      const blob = new TextEncoder().encode("hello from the smoke test\n");
      const digest = await sha256(blob);
      location.searchParams.set("digest", digest);
      const put = await fetch(location, {
        method: "PUT",
        headers: {
          ...bearer(push),
          "content-type": "application/octet-stream",
        },
        body: blob,
      });
      assert.equal(put.status, 201);
      assert.equal(put.headers.get("docker-content-digest"), digest);
      await put.body?.cancel();

      const head = await fetch(`${registry.url}/v2/smoke/app/blobs/${digest}`, {
        method: "HEAD",
        headers: bearer(pullOnly),
      });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get("content-length"), String(blob.length));
      await head.body?.cancel();
    });
  },
});

Deno.test({
  name:
    "startTokenRegistry(): distribution accepts a token until 60 s past exp and rejects it after",
  ...requirePeer("docker-registry", "openssl"),
  async fn() {
    // Distribution 2.8 allows 60 s of clock skew on exp and nbf, so a token server whose clock
    // is 90 s behind issues 1 s tokens that are already expired for the registry.
    await using setup = await startTokenRegistry({
      expiresIn: 1,
      clockOffset: -90,
    });
    const { registry, tokens } = setup;
    await withLogs(registry, async () => {
      const expired = await getToken(tokens, "repository:app:pull");
      const response = await fetch(`${registry.url}/v2/`, {
        headers: bearer(expired),
      });
      assert.equal(response.status, 401);
      assert.equal(
        response.headers.get("www-authenticate"),
        `Bearer realm="${tokens.realm}",service="${tokens.service}",error="invalid_token"`,
      );
      await response.body?.cancel();
      assert.match(registry.logs(), /token not to be used after/);

      const withinLeeway = await tokens.issue([], { clockOffset: -30 });
      assert.equal(
        await status(
          await fetch(`${registry.url}/v2/`, { headers: bearer(withinLeeway) }),
        ),
        200,
      );
    });
  },
});

Deno.test({
  name:
    "startTokenRegistry(): tokens for another audience or issuer are invalid_token",
  ...requirePeer("docker-registry", "openssl"),
  async fn() {
    await using setup = await startTokenRegistry();
    const { registry, tokens } = setup;
    for (
      const token of [
        await tokens.issue([], { audience: "elsewhere" }),
        await tokens.issue([], { issuer: "someone-else" }),
      ]
    ) {
      const response = await fetch(`${registry.url}/v2/`, {
        headers: bearer(token),
      });
      assert.equal(response.status, 401);
      assert.match(
        response.headers.get("www-authenticate")!,
        /error="invalid_token"/,
      );
      await response.body?.cancel();
    }
  },
});

Deno.test({
  name:
    "startTokenRegistry() with keyHeader kid: distribution finds the key by its libtrust ID",
  ...requirePeer("docker-registry", "openssl"),
  async fn() {
    await using setup = await startTokenRegistry({ keyHeader: "kid" });
    const { registry, tokens } = setup;
    const token = await getToken(tokens, undefined);
    const header = jwtPart(token, 0);
    assert.match(header.kid, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    assert.equal(header.x5c, undefined);
    await withLogs(registry, async () => {
      assert.equal(
        await status(
          await fetch(`${registry.url}/v2/`, { headers: bearer(token) }),
        ),
        200,
      );
    });
  },
});

Deno.test({
  name:
    "startTokenServer() refuses a wrong password with a JSON error and grants anonymous pulls by list",
  ...requirePeer("openssl"),
  async fn() {
    await using tokens = await startTokenServer({
      users: { bob: "builder" },
      anonymous: ["public/app"],
      field: "both",
    });
    const wrong = await fetch(`${tokens.realm}?service=${tokens.service}`, {
      headers: { authorization: `Basic ${btoa("bob:nope")}` },
    });
    assert.equal(wrong.status, 401);
    assert.deepEqual(await wrong.json(), {
      errors: [{
        code: "UNAUTHORIZED",
        message: "invalid username or password",
      }],
    });

    const url = new URL(tokens.realm);
    url.searchParams.append("scope", "repository:public/app:pull,push");
    url.searchParams.append("scope", "repository:private/app:pull");
    const anonymous = await fetch(url);
    const body = await anonymous.json();
    assert.equal(body.token, body.access_token);
    assert.equal(body.expires_in, 300);
    const claims = jwtPart(body.token, 1);
    assert.equal(claims.sub, "");
    assert.deepEqual(claims.access, [
      { type: "repository", name: "public/app", actions: ["pull"] },
      { type: "repository", name: "private/app", actions: [] },
    ]);
    assert.deepEqual(
      tokens.requests.map((r) => [r.authorized, r.user, r.status, r.scopes]),
      [
        [true, "bob", 401, []],
        [false, undefined, 200, [
          "repository:public/app:pull,push",
          "repository:private/app:pull",
        ]],
      ],
    );
  },
});

Deno.test({
  name:
    "startTokenServer() answers the OAuth2 form: a password grant with a refresh token, then refreshes",
  ...requirePeer("openssl"),
  async fn() {
    await using tokens = await startTokenServer({
      users: { bob: "builder" },
      refreshTokens: { "identity-token": "carol" },
      anonymous: false,
      grant: (user, scope) => user === "bob" ? ["pull"] : scope.actions,
    });
    const post = (form: Record<string, string>) =>
      fetch(tokens.realm, {
        method: "POST",
        body: new URLSearchParams({
          service: tokens.service,
          client_id: "oci-tests",
          scope: "repository:app:pull,push",
          ...form,
        }),
      });
    const first = await post({
      grant_type: "password",
      username: "bob",
      password: "builder",
      access_type: "offline",
    });
    assert.equal(first.status, 200);
    const login = await first.json();
    assert.equal(typeof login.access_token, "string");
    assert.equal(login.token, undefined);
    assert.equal(typeof login.refresh_token, "string");
    assert.equal(login.scope, "repository:app:pull,push");

    const again = await post({
      grant_type: "refresh_token",
      refresh_token: login.refresh_token,
    });
    const refreshed = await again.json();
    const claims = jwtPart(refreshed.access_token, 1);
    assert.equal(claims.sub, "bob");
    assert.deepEqual(claims.access[0].actions, ["pull"]);

    const identity = await post({
      grant_type: "refresh_token",
      refresh_token: "identity-token",
    });
    const carol = jwtPart((await identity.json()).access_token, 1);
    assert.equal(carol.sub, "carol");
    assert.deepEqual(carol.access[0].actions, ["pull", "push"]);

    assert.equal(
      await status(
        await post({ grant_type: "refresh_token", refresh_token: "made-up" }),
      ),
      401,
    );
    assert.equal(await status(await fetch(tokens.realm)), 401);
    assert.equal(
      await status(await fetch(`${tokens.realm}?service=other`)),
      400,
    );
  },
});

Deno.test("peerAvailable() finds programs on PATH and not made-up ones", () => {
  assert.equal(peerAvailable("sh"), true);
  assert.equal(peerAvailable("no-such-program-for-oci-tests"), false);
});

Deno.test(
  "requirePeer() ignores a test that needs a missing program unless peers are required",
  () => {
    assert.deepEqual(requirePeer("sh"), { ignore: false });
    assert.deepEqual(requirePeer("sh", "no-such-program-for-oci-tests"), {
      ignore: !peersRequired(),
    });
    assert.throws(
      () => assertPeer("no-such-program-for-oci-tests"),
      /^Error: Cannot run no-such-program-for-oci-tests: it is not installed \(install no-such-program-for-oci-tests\)/,
    );
  },
);

Deno.test("freePort() gives a loopback port that can be bound", () => {
  const port = freePort();
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  assert.equal(listener.addr.port, port);
  listener.close();
});
