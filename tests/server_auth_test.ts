// The client's auth flows against the embedded registry's own Basic and Bearer auth.
import assert from "node:assert/strict";
import { serveRegistry } from "../src/server/serve.ts";
import { hashPassword } from "../src/server/auth.ts";
import { createOpener } from "../src/transport/opener.ts";
import { AuthenticationError, withAuth } from "../src/transport/auth.ts";
import { httpTransport } from "../src/transport/http_transport.ts";
import { staticCredentials } from "../src/transport/credentials.ts";
import type { Transport } from "../src/transport/request_body.ts";
import { parseReference } from "../src/reference/reference.ts";
import { fetchBlob, uploadBlob } from "../src/registry/blobs.ts";
import { digestOf } from "../src/reference/digest.ts";

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
    uploadBlob(ref, new Uint8Array([1]), digestOf(new Uint8Array([1])), {
      transport: open,
    }),
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
  await uploadBlob(ref, bytes, digestOf(bytes), { transport: open });
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
  await uploadBlob(ref, bytes, digestOf(bytes), { transport: open });
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
