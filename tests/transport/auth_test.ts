// Unit tests of the auth layer with in-process registries, for what a real server will not do on
// demand (malformed challenges, odd token responses). The real flows are in auth_distribution_test.ts.
import assert from "node:assert/strict";
import {
  AuthenticationError,
  scopeOf,
  withAuth,
} from "../../src/transport/auth.ts";
import type { AuthEvent } from "../../src/transport/auth.ts";
import { staticCredentials } from "../../src/transport/credentials.ts";
import { createRequest } from "../../src/transport/request_body.ts";
import { UnsafeUrlError } from "../../src/transport/errors.ts";
import { withRedirects } from "../../src/transport/redirects.ts";
import { everythingAbout } from "../support/errors.ts";
import {
  assertTyped,
  challenging,
  endlessBody,
  get,
  MiB,
  REALM as SCRIPTED_REALM,
} from "../support/bad_input.ts";

const REGISTRY = "http://127.0.0.1:5000";
const REALM = "http://127.0.0.1:5001/token";

interface FakeOptions {
  challenge?: string | null;
  tokenBody?: unknown;
  tokenStatus?: number;
  acceptToken?: (authorization: string | null) => boolean;
}

/** A registry that wants a Bearer token, and its token server, behind one transport. */
function fakeRegistry(options: FakeOptions = {}) {
  const log: { url: string; authorization: string | null }[] = [];
  let issued = 0;
  const transport = async (request: Request): Promise<Response> => {
    const authorization = request.headers.get("authorization");
    log.push({ url: request.url, authorization });
    await request.body?.cancel();
    if (request.url.startsWith(REALM)) {
      issued++;
      if (options.tokenStatus) {
        return Response.json({
          errors: [{ code: "DENIED", message: "bad credentials" }],
        }, {
          status: options.tokenStatus,
        });
      }
      return Response.json(
        options.tokenBody ?? { token: `t${issued}`, expires_in: 300 },
      );
    }
    const accept = options.acceptToken ??
      ((a) => a?.startsWith("Bearer t") ?? false);
    if (accept(authorization)) return new Response("ok");
    const scope = scopeOf(request);
    return Response.json({
      errors: [{ code: "UNAUTHORIZED", message: "authentication required" }],
    }, {
      status: 401,
      headers: options.challenge === null ? {} : {
        "www-authenticate": options.challenge ??
          `Bearer realm="${REALM}",service="test",scope="${scope}"`,
      },
    });
  };
  return { transport, log, tokens: () => issued };
}

Deno.test("withAuth() answers a Bearer challenge once and reuses the token per scope", async () => {
  const { transport, log, tokens } = fakeRegistry();
  const events: AuthEvent[] = [];
  const opener = withAuth(transport, { onEvent: (e) => events.push(e) });
  for (let i = 0; i < 3; i++) {
    const response = await opener(
      new Request(`${REGISTRY}/v2/app/manifests/v${i}`),
    );
    assert.equal(await response.text(), "ok");
  }
  assert.equal(tokens(), 1);
  assert.equal(
    log.filter((l) => l.url.startsWith(REGISTRY)).length,
    4,
    "one 401, then three with the token",
  );
  const tokenUrl = new URL(log.find((l) => l.url.startsWith(REALM))!.url);
  assert.equal(tokenUrl.searchParams.get("service"), "test");
  assert.deepEqual(tokenUrl.searchParams.getAll("scope"), [
    "repository:app:pull",
  ]);
  assert.equal(tokenUrl.searchParams.get("client_id"), "oci");
  assert.deepEqual(events.map((e) => e.type), ["challenge", "token"]);
});

Deno.test("withAuth() asks for every scope of the challenge and keeps the realm's query", async () => {
  const { transport, log } = fakeRegistry({
    challenge:
      `Bearer realm="${REALM}?account=me",service="test",scope="repository:app:pull,push repository:base:pull"`,
  });
  const response = await withAuth(transport)(
    new Request(`${REGISTRY}/v2/app/blobs/uploads/?mount=sha256:x&from=base`, {
      method: "POST",
    }),
  );
  await response.body?.cancel();
  const tokenUrl = new URL(log.find((l) => l.url.startsWith(REALM))!.url);
  assert.deepEqual(tokenUrl.searchParams.getAll("scope"), [
    "repository:app:pull,push",
    "repository:base:pull",
  ]);
  assert.equal(tokenUrl.searchParams.get("account"), "me");
});

Deno.test("withAuth() sends Basic credentials to the token realm when it has them", async () => {
  const { transport, log } = fakeRegistry();
  const opener = withAuth(transport, {
    credentials: staticCredentials({ username: "alice", password: "s3cret" }),
  });
  await (await opener(new Request(`${REGISTRY}/v2/app/tags/list`))).body
    ?.cancel();
  const tokenRequest = log.find((l) => l.url.startsWith(REALM))!;
  assert.equal(tokenRequest.authorization, `Basic ${btoa("alice:s3cret")}`);
});

Deno.test("withAuth() accepts access_token and defaults expires_in to 60 s", async () => {
  let clock = 0;
  const { transport, tokens } = fakeRegistry({
    tokenBody: { access_token: "t-oauth" },
  });
  const opener = withAuth(transport, { now: () => clock });
  await (await opener(new Request(`${REGISTRY}/v2/app/manifests/a`))).body
    ?.cancel();
  clock = 59_000;
  await (await opener(new Request(`${REGISTRY}/v2/app/manifests/a`))).body
    ?.cancel();
  assert.equal(tokens(), 1);
  clock = 61_000;
  await (await opener(new Request(`${REGISTRY}/v2/app/manifests/a`))).body
    ?.cancel();
  assert.equal(
    tokens(),
    2,
    "an expired token is not sent; the 401 fetches a new one",
  );
});

Deno.test("withAuth() shares one token request between concurrent 401s", async () => {
  const { transport, tokens } = fakeRegistry();
  const opener = withAuth(transport);
  const responses = await Promise.all(
    Array.from(
      { length: 8 },
      (_, i) => opener(new Request(`${REGISTRY}/v2/app/blobs/sha256:${i}`)),
    ),
  );
  for (const r of responses) assert.equal(await r.text(), "ok");
  assert.equal(tokens(), 1);
});

Deno.test("withAuth() replays a request body after the login", async () => {
  const bodies: string[] = [];
  const { transport } = fakeRegistry();
  const opener = withAuth(async (request) => {
    if (request.method === "PUT") bodies.push(await request.clone().text());
    return transport(request);
  });
  const response = await opener(
    createRequest(`${REGISTRY}/v2/app/manifests/v1`, {
      method: "PUT",
      body: "{}",
    }),
  );
  assert.equal(await response.text(), "ok");
  assert.deepEqual(bodies, ["{}", "{}"]);
});

const failures: [string, FakeOptions, RegExp][] = [
  [
    "no WWW-Authenticate header",
    { challenge: null },
    /without a WWW-Authenticate header/,
  ],
  [
    "a malformed header",
    { challenge: "Bearer realm=http://x" },
    /Cannot parse WWW-Authenticate/,
  ],
  [
    "an unsupported scheme",
    { challenge: 'Digest realm="x", nonce="1"' },
    /unsupported authentication scheme/,
  ],
  [
    "Basic without credentials",
    { challenge: 'Basic realm="r"' },
    /none were found/,
  ],
  [
    "a token server that refuses",
    { tokenStatus: 401 },
    /token server refused the anonymous request/,
  ],
  [
    "a token response without a token",
    { tokenBody: { tokn: "x" } },
    /no "token" or "access_token"/,
  ],
  [
    "a token response that is not an object",
    { tokenBody: ["x"] },
    /no "token" or "access_token"/,
  ],
  [
    "a token the registry rejects",
    { acceptToken: () => false },
    /refused the credentials or token/,
  ],
  [
    "a realm that is not a URL",
    { challenge: 'Bearer realm="not a url"' },
    /is not a URL/,
  ],
  [
    "a plain-HTTP realm on another host",
    { challenge: 'Bearer realm="http://auth.example.com/token",service="x"' },
    /over plain HTTP from http:\/\/auth.example.com/,
  ],
];

for (const [what, options, message] of failures) {
  Deno.test(`withAuth() gives a clear AuthenticationError for ${what}`, async () => {
    const { transport } = fakeRegistry(options);
    await assert.rejects(
      withAuth(transport)(new Request(`${REGISTRY}/v2/app/manifests/v1`)),
      (error: unknown) => {
        assert.ok(error instanceof AuthenticationError, String(error));
        assert.match(error.message, message);
        assert.match(
          error.message,
          /Cannot log in to 127\.0\.0\.1:5000 for repository:app:pull/,
        );
        assert.equal(error.registry, "127.0.0.1:5000");
        return true;
      },
    );
  });
}

Deno.test("withAuth() never sends credentials over plain HTTP to a non-loopback registry", async () => {
  const seen: (string | null)[] = [];
  const opener = withAuth((request) => {
    seen.push(request.headers.get("authorization"));
    return Promise.resolve(
      new Response(null, {
        status: 401,
        headers: { "www-authenticate": 'Basic realm="r"' },
      }),
    );
  }, { credentials: staticCredentials({ username: "u", password: "secret" }) });
  await assert.rejects(
    opener(new Request("http://registry.example.com/v2/")),
    /refusing to send credentials over plain HTTP to http:\/\/registry.example.com/,
  );
  assert.deepEqual(seen, [null]);
});

Deno.test("withAuth() error messages never contain the password or the token", async () => {
  const { transport } = fakeRegistry({
    acceptToken: () => false,
    tokenBody: { token: "tok-SECRET" },
  });
  const opener = withAuth(transport, {
    credentials: staticCredentials({ username: "u", password: "pw-SECRET" }),
  });
  await assert.rejects(
    opener(new Request(`${REGISTRY}/v2/app/manifests/v1`)),
    (error: Error) => {
      const text = `${error.message} ${String(error.cause ?? "")} ${
        JSON.stringify(error)
      }`;
      assert.ok(!text.includes("SECRET"), text);
      return true;
    },
  );
});

Deno.test("withAuth() leaves a 401 from another origin (after a redirect) alone", async () => {
  const opener = withAuth(() => {
    const response = new Response(null, { status: 401 });
    Object.defineProperty(response, "url", {
      value: "http://storage.example/blob",
    });
    return Promise.resolve(response);
  });
  const response = await opener(
    new Request(`${REGISTRY}/v2/app/blobs/sha256:x`),
  );
  assert.equal(response.status, 401);
});

Deno.test("scopeOf() reads the repository and the actions from the request", () => {
  const cases: [string, string, string][] = [
    ["GET", "/v2/a/b/c/manifests/latest", "repository:a/b/c:pull"],
    ["HEAD", "/v2/app/blobs/sha256:x", "repository:app:pull"],
    ["POST", "/v2/app/blobs/uploads/", "repository:app:pull,push"],
    ["PUT", "/v2/app/manifests/v1", "repository:app:pull,push"],
    ["PATCH", "/v2/app/blobs/uploads/123", "repository:app:pull,push"],
    ["DELETE", "/v2/app/manifests/sha256:x", "repository:app:delete"],
    ["GET", "/v2/app/tags/list", "repository:app:pull"],
    ["GET", "/v2/my/blobs/app/blobs/sha256:x", "repository:my/blobs/app:pull"],
    ["GET", "/v2/_catalog", ""],
    ["GET", "/v2/", ""],
  ];
  for (const [method, path, scope] of cases) {
    assert.equal(
      scopeOf(new Request(`${REGISTRY}${path}`, { method })),
      scope,
      `${method} ${path}`,
    );
  }
});

for (
  const [what, realm, rule] of [
    ["file:", "file:///etc/passwd", "scheme"],
    ["uppercase FILE:", "FILE:///home/u/.docker/config.json", "scheme"],
    ["data:", "data:application/json,{%22token%22:%22x%22}", "scheme"],
    ["javascript:", "javascript:alert(1)", "scheme"],
    ["relative", "/token", "url"],
  ]
) {
  Deno.test(`withAuth() refuses a ${what} token realm with an UnsafeUrlError naming the realm`, async () => {
    const { transport, log } = fakeRegistry({
      challenge: `Bearer realm="${realm}",service="x"`,
    });
    await assert.rejects(
      withAuth(transport)(new Request(`${REGISTRY}/v2/app/manifests/v1`)),
      (error: unknown) => {
        assert.ok(error instanceof AuthenticationError, String(error));
        assert.ok(error.cause instanceof UnsafeUrlError, String(error.cause));
        assert.equal(error.cause.rule, rule);
        assert.equal(error.cause.header, "WWW-Authenticate realm");
        assert.match(
          error.cause.message,
          /^Refusing the WWW-Authenticate realm/,
        );
        return true;
      },
    );
    assert.equal(log.length, 1, "no token request was sent");
  });
}

Deno.test("withAuth() refuses a token realm that leads from https down to plain http", async () => {
  const sent: string[] = [];
  const transport = (request: Request) => {
    sent.push(request.url);
    return Promise.resolve(
      new Response(null, {
        status: 401,
        headers: {
          "www-authenticate":
            'Bearer realm="http://auth.example/token",service="x"',
        },
      }),
    );
  };
  await assert.rejects(
    withAuth(transport)(
      new Request("https://registry.example/v2/app/tags/list"),
    ),
    (error: unknown) =>
      error instanceof AuthenticationError &&
      error.cause instanceof UnsafeUrlError && error.cause.rule === "downgrade",
  );
  assert.deepEqual(sent, ["https://registry.example/v2/app/tags/list"]);
});

Deno.test("withAuth() with redirects: a token server's redirect to a local file is refused, its content never sent", async () => {
  const path = await Deno.makeTempFile();
  const marker = `local-${crypto.randomUUID()}`;
  await Deno.writeTextFile(path, JSON.stringify({ token: marker }));
  try {
    const seen: (string | null)[] = [];
    const bottom = (request: Request) => {
      seen.push(request.headers.get("authorization"));
      if (request.url.startsWith(REALM)) {
        return Promise.resolve(
          new Response(null, {
            status: 307,
            headers: { location: `file://${path}` },
          }),
        );
      }
      return Promise.resolve(
        new Response(null, {
          status: 401,
          headers: {
            "www-authenticate": `Bearer realm="${REALM}",service="x"`,
          },
        }),
      );
    };
    const error = await withAuth(withRedirects(bottom))(
      new Request(`${REGISTRY}/v2/app/tags/list`),
    ).then(() => undefined, (error: unknown) => error);
    assert.ok(error instanceof UnsafeUrlError, String(error));
    assert.ok(!everythingAbout(error).includes(marker));
    assert.ok(!seen.some((header) => header?.includes(marker)));
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("withAuth() remembers the password, the Basic value and tokens it uses, so an echo of them is redacted", async () => {
  const password = `pw-${crypto.randomUUID()}`;
  const basic = btoa(`alice:${password}`);
  let token = "";
  const transport = async (request: Request): Promise<Response> => {
    await request.body?.cancel();
    const authorization = request.headers.get("authorization") ?? "";
    if (request.url.startsWith(REALM)) {
      token = `tok${crypto.randomUUID().replaceAll("-", "")}`;
      return Response.json({ token });
    }
    if (authorization.startsWith("Bearer ")) {
      return Response.json({
        errors: [{
          code: "DENIED",
          message:
            `token ${token}; the token server got ${basic} (${password})`,
          detail: `${encodeURIComponent(password)} ${token}`,
        }],
      }, { status: 403 });
    }
    return new Response(null, {
      status: 401,
      headers: { "www-authenticate": `Bearer realm="${REALM}",service="x"` },
    });
  };
  const response = await withAuth(transport, {
    credentials: staticCredentials({ username: "alice", password }),
  })(new Request(`${REGISTRY}/v2/app/tags/list`));
  const { registryErrorOf } = await import("../../src/transport/errors.ts");
  const error = await registryErrorOf(
    new Request(`${REGISTRY}/v2/app/tags/list`),
    response,
  );
  const text = everythingAbout(error);
  for (const secret of [password, basic, token, encodeURIComponent(password)]) {
    assert.ok(!text.includes(secret), text);
  }
  assert.match(
    error.message,
    /DENIED: token REDACTED; the token server got REDACTED \(REDACTED\)/,
  );
});

Deno.test("withAuth() remembers the credential of an Authorization header the caller set", async () => {
  const credential = `preset${crypto.randomUUID()}`;
  const transport = (request: Request) =>
    Promise.resolve(
      Response.json({
        errors: [{
          code: "DENIED",
          message: `you sent ${
            request.headers.get("authorization")?.split(" ")[1]
          }`,
        }],
      }, { status: 403 }),
    );
  const request = new Request(`${REGISTRY}/v2/app/tags/list`, {
    headers: { authorization: `Custom ${credential}` },
  });
  const response = await withAuth(transport)(request);
  const { registryErrorOf } = await import("../../src/transport/errors.ts");
  const error = await registryErrorOf(request, response);
  assert.equal(error.message.includes(credential), false, error.message);
});

// Bad input from the outside world (issue 7, item 3): logins that never succeed and token
// responses of the wrong shape.

Deno.test("bad input: a registry that refuses every token or password stops after one login, no loop", async () => {
  for (
    const [challenge, credentials] of [
      [`Bearer realm="${SCRIPTED_REALM}"`, undefined],
      ['Basic realm="r"', { username: "u", password: "wrong" }],
    ] as const
  ) {
    const { transport, requests } = challenging(
      challenge,
      () => Response.json({ token: "rejected" }),
      credentials,
    );
    await assert.rejects(
      get(transport),
      (error) =>
        assertTyped(
          error,
          AuthenticationError,
          /refused the credentials or token it asked for/,
        ),
    );
    const registryRequests = requests.filter((r) => !r.endsWith("/token"));
    assert.equal(registryRequests.length, 2, challenge);
  }
});

const BAD_TOKENS: [string, () => Response, RegExp][] = [
  ["a body that is not JSON", () => new Response("token=abc"), /not JSON/],
  ["an HTML body", () =>
    new Response("<html><body>Sign in</body></html>", {
      headers: { "content-type": "text/html" },
    }), /not JSON/],
  ["a 200 with no body", () => new Response(null), /not JSON/],
  ["truncated JSON", () => new Response('{"token": "ab'), /not JSON/],
  [
    "a JSON array",
    () => Response.json(["good"]),
    /no "token" or "access_token" string/,
  ],
  [
    "a JSON string",
    () => Response.json("good"),
    /no "token" or "access_token"/,
  ],
  ["JSON null", () => Response.json(null), /no "token" or "access_token"/],
  ["an empty object", () => Response.json({}), /no "token" or "access_token"/],
  [
    "a numeric token",
    () => Response.json({ token: 12345 }),
    /no "token" or "access_token"/,
  ],
  [
    "an empty token",
    () => Response.json({ token: "" }),
    /no "token" or "access_token"/,
  ],
  [
    "an object token",
    () => Response.json({ access_token: { v: 1 } }),
    /no "token" or "access_token"/,
  ],
  [
    "a token with a newline",
    () => Response.json({ token: "abc\r\nX-Injected: 1" }),
    /cannot be sent in an Authorization header/,
  ],
  [
    "a token with non-ASCII characters",
    () => Response.json({ token: "tøken€" }),
    /cannot be sent in an Authorization header/,
  ],
  [
    "a token with a space",
    () => Response.json({ token: "a b" }),
    /cannot be sent in an Authorization header/,
  ],
  [
    "a declared 100 MiB body",
    () =>
      new Response(endlessBody(new Uint8Array(MiB).fill(32), 100 * MiB).body, {
        headers: { "content-length": String(100 * MiB) },
      }),
    /the token response is larger than 1048576 bytes/,
  ],
  [
    "a token server error page",
    () =>
      new Response("<html><title>503 Service Unavailable</title></html>", {
        status: 503,
      }),
    /: 503.*: the token server failed/,
  ],
];

for (const [what, token, pattern] of BAD_TOKENS) {
  Deno.test(`bad input: a token response with ${what} gives an AuthenticationError`, async () => {
    const { transport, requests } = challenging(
      `Bearer realm="${SCRIPTED_REALM}"`,
      token,
    );
    await assert.rejects(get(transport), (error: unknown) => {
      assertTyped(
        error,
        AuthenticationError,
        /Cannot log in to 127\.0\.0\.1:5000/,
        pattern,
      );
      assert.doesNotMatch(
        (error as Error).message,
        /X-Injected|tøken/,
        "never the token",
      );
      return true;
    });
    assert.equal(
      requests.length,
      2,
      "the request and the token request, no retry of the request",
    );
  });
}

Deno.test("bad input: a 100 MiB token response without Content-Length is not read whole", async () => {
  const endless = endlessBody(new Uint8Array(64 * 1024).fill(32), 100 * MiB);
  const { transport } = challenging(
    `Bearer realm="${SCRIPTED_REALM}"`,
    () => new Response(endless.body),
  );
  await assert.rejects(
    get(transport),
    (error) =>
      assertTyped(error, AuthenticationError, /larger than 1048576 bytes/),
  );
  assert.ok(endless.pulled() <= 2 * MiB, `read ${endless.pulled()} bytes`);
});

for (
  const expires of ["-5", "0", '"soon"', "1e308", "1e999", "null", '{"s":1}']
) {
  Deno.test(`bad input: expires_in ${expires} falls back or is harmless`, async () => {
    const { transport, tokenRequests } = challenging(
      `Bearer realm="${SCRIPTED_REALM}"`,
      () => new Response(`{"token":"good","expires_in":${expires}}`),
    );
    assert.equal(await (await get(transport)).text(), "ok");
    assert.equal(await (await get(transport)).text(), "ok");
    assert.equal(tokenRequests(), 1, "the token is reused");
  });
}
