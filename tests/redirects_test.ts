import assert from "node:assert/strict";
import { withRedirects } from "../src/transport/redirects.ts";
import { httpTransport } from "../src/transport/http_transport.ts";
import { createRequest } from "../src/transport/request_body.ts";

/** Two real servers: the registry redirects blob reads to the storage server. */
function registryAndStorage(status = 307) {
  const storageSeen: {
    method: string;
    authorization: string | null;
    body: string;
  }[] = [];
  const storage = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      storageSeen.push({
        method: request.method,
        authorization: request.headers.get("authorization"),
        body: await request.text(),
      });
      return new Response(request.method === "HEAD" ? null : "blob-bytes");
    },
  );
  const registrySeen: { method: string; authorization: string | null }[] = [];
  const registry = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      await request.body?.cancel();
      registrySeen.push({
        method: request.method,
        authorization: request.headers.get("authorization"),
      });
      const path = new URL(request.url).pathname;
      if (path === "/same") return new Response(`same ${request.method}`);
      if (path === "/loop") {
        return new Response(null, {
          status: 302,
          headers: { location: "/loop" },
        });
      }
      if (path.startsWith("/local")) {
        return new Response(null, { status, headers: { location: "/same" } });
      }
      // "localhost" is another origin than "127.0.0.1", although it is the same machine.
      return new Response(null, {
        status,
        headers: {
          location: `http://localhost:${storage.addr.port}/signed?sig=abc`,
        },
      });
    },
  );
  return {
    storage,
    storageSeen,
    registry,
    registrySeen,
    url: `http://127.0.0.1:${registry.addr.port}`,
  };
}

Deno.test("withRedirects() drops Authorization when a redirect leaves the origin", async () => {
  const { storage, registry, storageSeen, registrySeen, url } =
    registryAndStorage();
  await using _s = storage;
  await using _r = registry;
  const response = await withRedirects(httpTransport)(
    new Request(`${url}/v2/app/blobs/sha256:x`, {
      headers: { authorization: "Bearer secret" },
    }),
  );
  assert.equal(await response.text(), "blob-bytes");
  assert.equal(new URL(response.url).hostname, "localhost");
  assert.equal(registrySeen[0].authorization, "Bearer secret");
  assert.equal(storageSeen[0].authorization, null);
});

Deno.test("withRedirects() keeps Authorization on a same-origin redirect", async () => {
  const { storage, registry, registrySeen, url } = registryAndStorage();
  await using _s = storage;
  await using _r = registry;
  const response = await withRedirects(httpTransport)(
    new Request(`${url}/local`, {
      headers: { authorization: "Bearer secret" },
    }),
  );
  assert.equal(await response.text(), "same GET");
  assert.deepEqual(registrySeen.map((s) => s.authorization), [
    "Bearer secret",
    "Bearer secret",
  ]);
});

for (const status of [301, 302, 303, 307, 308]) {
  Deno.test(`withRedirects() keeps HEAD as HEAD across a ${status}`, async () => {
    const { storage, registry, storageSeen, url } = registryAndStorage(status);
    await using _s = storage;
    await using _r = registry;
    const response = await withRedirects(httpTransport)(
      new Request(`${url}/v2/app/blobs/sha256:x`, { method: "HEAD" }),
    );
    assert.equal(response.status, 200);
    assert.equal(storageSeen[0].method, "HEAD");
  });
}

Deno.test("withRedirects() replays a PUT body on 307 and turns a POST into GET on 303", async () => {
  const { storage, registry, storageSeen, url } = registryAndStorage(307);
  await using _s = storage;
  await using _r = registry;
  const put = await withRedirects(httpTransport)(
    createRequest(`${url}/v2/app/blobs/uploads/1`, {
      method: "PUT",
      body: "payload",
    }),
  );
  await put.body?.cancel();
  assert.deepEqual(storageSeen[0], {
    method: "PUT",
    authorization: null,
    body: "payload",
  });

  const other = registryAndStorage(303);
  await using _s2 = other.storage;
  await using _r2 = other.registry;
  const post = await withRedirects(httpTransport)(
    createRequest(`${other.url}/v2/app/blobs/uploads/`, {
      method: "POST",
      body: "x",
    }),
  );
  await post.body?.cancel();
  assert.deepEqual(other.storageSeen[0], {
    method: "GET",
    authorization: null,
    body: "",
  });
});

Deno.test("withRedirects() stops a redirect loop with a clear error", async () => {
  const { storage, registry, url } = registryAndStorage();
  await using _s = storage;
  await using _r = registry;
  await assert.rejects(
    withRedirects(httpTransport, { maxRedirects: 3 })(
      new Request(`${url}/loop`),
    ),
    /more than 3/,
  );
});

Deno.test("withRedirects() refuses to replay a one-shot body on 307", async () => {
  const { storage, registry, url } = registryAndStorage(307);
  await using _s = storage;
  await using _r = registry;
  await assert.rejects(
    withRedirects(httpTransport)(
      new Request(`${url}/v2/app/blobs/uploads/1`, {
        method: "PUT",
        body: new Response("x").body,
      }),
    ),
    /one-shot stream/,
  );
});
