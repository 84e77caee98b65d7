// The client's auth flows against the embedded registry's own Basic and Bearer auth.
import assert from "node:assert/strict";
import { serveRegistry } from "../../src/server/serve.ts";
import { hashPassword } from "../../src/server/auth.ts";
import { createOpener } from "../../src/transport/opener.ts";
import { AuthenticationError, withAuth } from "../../src/transport/auth.ts";
import { httpTransport } from "../../src/transport/http_transport.ts";
import { staticCredentials } from "../../src/transport/credentials.ts";
import type { Transport } from "../../src/transport/request_body.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { fetchBlob } from "../../src/store/remote/blobs.ts";
import { digestOf } from "../../src/oci/digest.ts";
import type { ImageReference } from "../../src/oci/reference.ts";
import { copyBlobs, copyImage } from "../../src/image/copy.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { memoryStore } from "../../src/store/memory_store.ts";
import { bytesSource } from "../../src/transport/request_body.ts";
import { makeImage, pushTestImage } from "../support/images.ts";

/** Pushes a blob as a push does: HEAD first, then an upload unless the registry has it. */
async function pushBlob(
  ref: ImageReference,
  bytes: Uint8Array,
  transport: Transport,
): Promise<void> {
  const descriptor = {
    mediaType: "application/octet-stream",
    digest: digestOf(bytes),
    size: bytes.byteLength,
  };
  const source = memoryStore();
  await source.push(descriptor, bytesSource(bytes));
  await copyBlobs(source, remoteStore(ref, { transport }), [descriptor]);
}

function counting() {
  const log: { path: string; status: number; authorization: boolean }[] = [];
  const transport: Transport = async (request) => {
    const response = await httpTransport(request);
    log.push({
      path: new URL(request.url).pathname,
      status: response.status,
      authorization: request.headers.has("authorization"),
    });
    return response;
  };
  return {
    log,
    transport,
    unauthorized: () =>
      log.filter((l) => l.status === 401 && l.path.startsWith("/v2")).length,
    tokens: () => log.filter((l) => l.path === "/token").length,
  };
}

const USERS = {
  alice: await hashPassword("wonderland", 1000),
  bob: "{PLAIN}builder",
};

Deno.test("embedded Basic auth: one 401, then credentials up front; a wrong password is a clear error", async () => {
  await using registry = await serveRegistry({ auth: { users: USERS } });
  const { transport, unauthorized } = counting();
  const open = createOpener({
    transport,
    credentials: staticCredentials({
      username: "alice",
      password: "wonderland",
    }),
  });
  for (let i = 0; i < 3; i++) {
    const response = await open(new Request(`${registry.url}/v2/`));
    assert.equal(response.status, 200);
    await response.body?.cancel();
  }
  assert.equal(unauthorized(), 1);
  const wrong = createOpener({
    credentials: staticCredentials({ username: "alice", password: "nope" }),
  });
  await assert.rejects(
    wrong(new Request(`${registry.url}/v2/`)),
    (error: unknown) =>
      error instanceof AuthenticationError &&
      /refused the credentials/.test(error.message),
  );
});

Deno.test("embedded Bearer auth: anonymous pull token reused; anonymous push refused", async () => {
  await using registry = await serveRegistry({
    auth: { users: USERS, token: { anonymousPull: true } },
  });
  const { transport, unauthorized, tokens } = counting();
  const open = createOpener({
    transport,
    credentials: () => Promise.resolve(undefined),
  });
  for (let i = 0; i < 4; i++) {
    const response = await open(
      new Request(`${registry.url}/v2/app/tags/list`),
    );
    assert.equal(
      response.status,
      404,
      "authorised; the repository does not exist",
    );
    await response.body?.cancel();
  }
  assert.equal(unauthorized(), 1);
  assert.equal(tokens(), 1);
  const ref = parseReference(`${registry.host}/app`);
  await assert.rejects(
    pushBlob(ref, new Uint8Array([1]), open),
    (error: unknown) =>
      error instanceof AuthenticationError &&
      /repository:app:pull,push/.test(error.message),
  );
});

Deno.test("embedded Bearer auth: credentials push and pull with one 401 per scope", async () => {
  await using registry = await serveRegistry({
    auth: { users: USERS, token: {} },
  });
  const { transport, unauthorized, tokens } = counting();
  const open = createOpener({
    transport,
    credentials: staticCredentials({ username: "bob", password: "builder" }),
  });
  const ref = parseReference(`${registry.host}/team/app`);
  const bytes = new TextEncoder().encode("authorised bytes");
  await pushBlob(ref, bytes, open);
  const back = await new Response(
    await fetchBlob(ref, digestOf(bytes), { transport: open }),
  ).text();
  assert.equal(back, "authorised bytes");
  assert.equal(tokens(), 2, "one token for pull,push and one for pull");
  assert.equal(unauthorized(), 2);
});

Deno.test("embedded Bearer auth: an expired token is not sent; the client logs in again", async () => {
  await using registry = await serveRegistry({
    auth: { users: USERS, token: { expiresIn: 1, anonymousPull: true } },
  });
  const { transport, tokens } = counting();
  let clock = 0;
  const open = withAuth(transport, { now: () => clock });
  const get = async () => {
    const response = await open(
      new Request(`${registry.url}/v2/app/tags/list`),
    );
    assert.equal(response.status, 404);
    await response.body?.cancel();
  };
  await get();
  clock = 900;
  await get();
  assert.equal(tokens(), 1);
  clock = 1100;
  await get();
  assert.equal(tokens(), 2);
});

Deno.test("embedded Bearer auth: a wrong password at /token names the registry and scope", async () => {
  await using registry = await serveRegistry({
    auth: { users: USERS, token: {} },
  });
  const open = createOpener({
    credentials: staticCredentials({
      username: "bob",
      password: "wrong-SECRET",
    }),
  });
  await assert.rejects(
    open(new Request(`${registry.url}/v2/team/app/tags/list`)),
    (error: unknown) => {
      assert.ok(error instanceof AuthenticationError);
      assert.match(
        error.message,
        /for repository:team\/app:pull: the token server refused the credentials/,
      );
      assert.ok(!error.message.includes("SECRET"));
      return true;
    },
  );
});

Deno.test("a blob GET redirected to another origin does not carry the token there", async () => {
  const seen: (string | null)[] = [];
  await using storage = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
  }, (request) => {
    seen.push(request.headers.get("authorization"));
    return new Response("blob from storage");
  });
  await using registry = await serveRegistry({
    auth: { users: USERS, token: {} },
    // "localhost" is another origin than the registry's "127.0.0.1".
    redirectBlob: () => `http://localhost:${storage.addr.port}/signed`,
  });
  const { transport, log } = counting();
  const open = createOpener({
    transport,
    credentials: staticCredentials({ username: "bob", password: "builder" }),
  });
  const ref = parseReference(`${registry.host}/app`);
  const bytes = new TextEncoder().encode("blob from storage");
  await pushBlob(ref, bytes, open);
  const text = await new Response(
    await fetchBlob(ref, digestOf(bytes), { transport: open }),
  ).text();
  assert.equal(text, "blob from storage");
  assert.deepEqual(seen, [null], "no Authorization reached the storage origin");
  assert.ok(
    log.some((l) =>
      l.path.includes("/blobs/sha256:") && l.status === 307 && l.authorization
    ),
  );
});

// Scopes: every repository a request acts on is checked, for its exact name and every action.

const SECRET = "test-signing-secret";

/** A token from the registry's own token endpoint, as bob. */
async function tokenFor(url: string, ...scopes: string[]): Promise<string> {
  const query = new URLSearchParams({ service: "oci-registry" });
  for (const scope of scopes) query.append("scope", scope);
  const response = await fetch(`${url}/token?${query}`, {
    headers: { authorization: `Basic ${btoa("bob:builder")}` },
  });
  assert.equal(response.status, 200);
  return (await response.json()).token;
}

/** One request with a Bearer token; the answer's status, code and challenge. */
async function call(
  url: string,
  method: string,
  path: string,
  token: string,
  body?: string,
) {
  const response = await fetch(`${url}${path}`, {
    method,
    body,
    headers: { authorization: `Bearer ${token}` },
  });
  const text = await response.text();
  return {
    status: response.status,
    code: text.startsWith("{") ? JSON.parse(text).errors?.[0]?.code : undefined,
    challenge: response.headers.get("www-authenticate") ?? "",
    location: response.headers.get("location"),
    text,
  };
}

/** Pushes `text` to `repository` with a token of its own; returns its digest. */
async function pushText(url: string, repository: string, text: string) {
  const token = await tokenFor(url, `repository:${repository}:pull,push`);
  const digest = digestOf(text);
  const pushed = await call(
    url,
    "POST",
    `/v2/${repository}/blobs/uploads/?digest=${digest}`,
    token,
    text,
  );
  assert.equal(pushed.status, 201);
  return digest;
}

async function scopedRegistry() {
  return await serveRegistry({
    auth: { users: USERS, token: { secret: SECRET } },
  });
}

Deno.test("a mount needs pull on its source: refused with a challenge naming both scopes, allowed with both", async () => {
  await using registry = await scopedRegistry();
  const digest = await pushText(registry.url, "a", "layer of a");
  const mountPath = `/v2/b/blobs/uploads/?mount=${digest}&from=a`;
  const onlyB = await tokenFor(registry.url, "repository:b:pull,push");
  const refused = await call(registry.url, "POST", mountPath, onlyB);
  assert.equal(refused.status, 401);
  assert.equal(refused.code, "UNAUTHORIZED");
  assert.match(
    refused.challenge,
    /scope="repository:b:pull,push repository:a:pull",error="insufficient_scope"/,
  );
  assert.equal(
    (await call(registry.url, "HEAD", `/v2/b/blobs/${digest}`, onlyB)).status,
    404,
  );
  const both = await tokenFor(
    registry.url,
    "repository:b:pull,push",
    "repository:a:pull",
  );
  const mounted = await call(registry.url, "POST", mountPath, both);
  assert.equal(mounted.status, 201);
  assert.equal(mounted.location, `/v2/b/blobs/${digest}`);
  const read = await call(registry.url, "GET", `/v2/b/blobs/${digest}`, both);
  assert.equal(read.text, "layer of a");
});

Deno.test("a mount without a usable source starts an upload (202) and never searches the registry", async () => {
  await using registry = await scopedRegistry();
  const digest = await pushText(registry.url, "a", "layer of a");
  const token = await tokenFor(registry.url, "repository:b:pull,push");
  for (
    const query of [
      `mount=${digest}`,
      `mount=${digest}&from=`,
      `mount=${digest}&from=A`,
      `mount=${digest}&from=a%2F`,
      `mount=${digest}&from=team%252Fapp`,
      `mount=${digest}&from=b&from=a`,
      `mount=${digest}&mount=${digest}&from=b`,
      `mount=sha256:nothex&from=b`,
    ]
  ) {
    const answer = await call(
      registry.url,
      "POST",
      `/v2/b/blobs/uploads/?${query}`,
      token,
    );
    assert.equal(answer.status, 202, query);
    assert.match(answer.location!, /^\/v2\/b\/blobs\/uploads\//, query);
  }
  assert.equal(
    (await call(registry.url, "GET", `/v2/b/blobs/${digest}`, token)).status,
    404,
  );
});

Deno.test("a token is checked for every action a request takes", async () => {
  await using registry = await scopedRegistry();
  const digest = await pushText(registry.url, "b", "layer of b");
  await pushText(registry.url, "a", "layer of b");
  const pullOnly = await tokenFor(registry.url, "repository:b:pull");
  const pushOnly = await tokenFor(registry.url, "repository:b:push");
  const pullPush = await tokenFor(registry.url, "repository:b:pull,push");
  const writes: [string, string][] = [
    ["POST", "/v2/b/blobs/uploads/"],
    ["POST", `/v2/b/blobs/uploads/?digest=${digest}`],
    ["POST", `/v2/b/blobs/uploads/?mount=${digest}&from=b`],
    ["PATCH", "/v2/b/blobs/uploads/some-session"],
    ["PUT", `/v2/b/blobs/uploads/some-session?digest=${digest}`],
    ["PUT", "/v2/b/manifests/v1"],
  ];
  const deletes: [string, string][] = [
    ["DELETE", `/v2/b/blobs/${digest}`],
    ["DELETE", "/v2/b/manifests/v1"],
  ];
  for (const [method, path] of [...writes, ...deletes]) {
    const answer = await call(registry.url, method, path, pullOnly, "");
    assert.equal(answer.status, 401, `${method} ${path} with pull`);
    assert.equal(answer.code, "UNAUTHORIZED");
  }
  for (const [method, path] of writes) {
    const answer = await call(registry.url, method, path, pushOnly, "");
    assert.equal(answer.status, 401, `${method} ${path} with push, no pull`);
  }
  for (const [method, path] of deletes) {
    const answer = await call(registry.url, method, path, pullPush);
    assert.equal(answer.status, 401, `${method} ${path} with pull,push`);
    assert.match(answer.challenge, /scope="repository:b:delete"/);
  }
  const mountFromA = await call(
    registry.url,
    "POST",
    `/v2/b/blobs/uploads/?mount=${digest}&from=a`,
    await tokenFor(registry.url, "repository:b:pull,push", "repository:a:push"),
  );
  assert.equal(mountFromA.status, 401, "push on the source is not pull");
});

Deno.test("a token is checked for the exact repository name", async () => {
  await using registry = await scopedRegistry();
  for (
    const [granted, used] of [
      ["b", "b/sub"],
      ["b", "bx"],
      ["bx", "b"],
      ["team", "team/app"],
      ["team/app", "team"],
      ["team/app", "team%2Fapp"],
    ]
  ) {
    const token = await tokenFor(registry.url, `repository:${granted}:pull`);
    const answer = await call(
      registry.url,
      "GET",
      `/v2/${used}/tags/list`,
      token,
    );
    assert.equal(answer.status, 401, `a token for ${granted} on ${used}`);
    assert.equal(answer.code, "UNAUTHORIZED");
  }
  const encoded = await tokenFor(registry.url, "repository:team%2Fapp:pull");
  const answer = await call(
    registry.url,
    "GET",
    "/v2/team%2Fapp/tags/list",
    encoded,
  );
  assert.equal(answer.code, "NAME_INVALID", "an encoded name is no name");
});

/** Signs a payload with the registry's secret, as its token endpoint would. */
async function forge(payload: unknown): Promise<string> {
  const encode = (bytes: Uint8Array) =>
    btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-")
      .replace(/\//g, "_").replace(/=+$/, "");
  const body = encode(new TextEncoder().encode(JSON.stringify(payload)));
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(SECRET),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const signature = await crypto.subtle.sign(
    "HMAC",
    key,
    new TextEncoder().encode(body),
  );
  return `${body}.${encode(new Uint8Array(signature))}`;
}

Deno.test("signed tokens of another service, expired or malformed are refused with 401", async () => {
  await using registry = await scopedRegistry();
  const exp = Math.floor(Date.now() / 1000) + 300;
  const access = [{ name: "b", actions: ["pull"] }];
  const good = await forge({ sub: "bob", aud: "oci-registry", access, exp });
  assert.equal(
    (await call(registry.url, "GET", "/v2/b/tags/list", good)).status,
    404,
    "the forger holds the secret: authorised, the repository is unknown",
  );
  for (
    const payload of [
      { sub: "bob", access, exp },
      { sub: "bob", aud: "other-registry", access, exp },
      { sub: "bob", aud: "oci-registry", access, exp: exp - 3600 },
      { sub: "bob", aud: "oci-registry", access },
      { sub: "bob", aud: "oci-registry", access: "b:pull", exp },
      { sub: "bob", aud: "oci-registry", access: [{ name: "b" }], exp },
      null,
    ]
  ) {
    const answer = await call(
      registry.url,
      "GET",
      "/v2/b/tags/list",
      await forge(payload),
    );
    assert.equal(answer.status, 401, JSON.stringify(payload));
    assert.equal(answer.code, "UNAUTHORIZED");
  }
});

Deno.test("the token endpoint issues tokens for its own service only", async () => {
  await using registry = await serveRegistry({
    auth: { users: USERS, token: { service: "production" } },
  });
  const challenge = await fetch(`${registry.url}/v2/`);
  await challenge.body?.cancel();
  assert.match(
    challenge.headers.get("www-authenticate")!,
    /service="production"/,
  );
  const refused = await fetch(
    `${registry.url}/token?service=staging&scope=repository:b:pull`,
    { headers: { authorization: `Basic ${btoa("bob:builder")}` } },
  );
  assert.equal(refused.status, 400);
  const [error] = (await refused.json()).errors;
  assert.equal(error.code, "DENIED");
  assert.match(error.message, /"production", not "staging"/);
});

Deno.test("copyImage() within one Bearer-auth registry still mounts: no blob bytes sent", async () => {
  await using registry = await scopedRegistry();
  const log: string[] = [];
  const open = createOpener({
    transport: async (request) => {
      const response = await httpTransport(request);
      const url = new URL(request.url);
      log.push(
        `${request.method} ${url.pathname}${url.search} ${response.status}`,
      );
      return response;
    },
    credentials: staticCredentials({ username: "bob", password: "builder" }),
  });
  const src = parseReference(`${registry.host}/base/image:v1`);
  const dst = parseReference(`${registry.host}/other/image`);
  const image = makeImage({ os: "linux", architecture: "amd64" }, [
    1000,
    2000,
  ], 7);
  await pushTestImage(src, image, { transport: open });
  // A token for other/image alone is cached first, as after an earlier push there.
  const before = new TextEncoder().encode("pushed to other/image before");
  await pushBlob(dst, before, open);
  log.length = 0;
  const result = await copyImage(
    remoteStore(src, { transport: open }),
    remoteStore(dst, { transport: open }),
    "v1",
  );
  assert.equal(result.blobsCopied, 3);
  assert.deepEqual(
    log.filter((l) => /^(PUT|PATCH) .*\/blobs\/uploads\//.test(l)),
    [],
    "no blob bytes sent",
  );
  assert.equal(log.filter((l) => /^POST .*mount=.* 201$/.test(l)).length, 3);
});
