import assert from "node:assert/strict";
import {
  resolveRegistryUrl,
  withRedirects,
} from "../../src/transport/redirects.ts";
import { UnsafeUrlError } from "../../src/transport/errors.ts";
import { everythingAbout } from "../support/errors.ts";
import { httpTransport } from "../../src/transport/http_transport.ts";
import { createRequest } from "../../src/transport/request_body.ts";

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

// Origins differ by scheme, host or port: credentials never follow a redirect that changes any.
for (const scheme of ["Basic", "Bearer"]) {
  Deno.test(`withRedirects() drops ${scheme} credentials on a redirect to another port of the same host`, async () => {
    const seen: (string | null)[] = [];
    await using other = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request) => {
        seen.push(request.headers.get("authorization"));
        return new Response("other port");
      },
    );
    await using registry = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () =>
        new Response(null, {
          status: 307,
          headers: {
            location: `http://127.0.0.1:${other.addr.port}/v2/app/blobs/x`,
          },
        }),
    );
    const response = await withRedirects(httpTransport)(
      new Request(`http://127.0.0.1:${registry.addr.port}/v2/app/blobs/x`, {
        headers: { authorization: `${scheme} c2VjcmV0OnNlY3JldA==` },
      }),
    );
    assert.equal(await response.text(), "other port");
    assert.deepEqual(seen, [null]);
  });

  for (
    const [what, from, to] of [
      ["scheme", "http://127.0.0.1:5000/b", "https://127.0.0.1:5000/b"],
      ["host", "http://127.0.0.1:5000/b", "http://localhost:5000/b"],
      ["port", "http://127.0.0.1:5000/b", "http://127.0.0.1:5001/b"],
      [
        "port, implicit to explicit",
        "https://r.example/b",
        "https://r.example:8443/b",
      ],
    ]
  ) {
    Deno.test(`withRedirects() drops ${scheme} credentials when the ${what} changes`, async () => {
      const seen: [string, string | null, string | null][] = [];
      const transport = withRedirects((request) => {
        seen.push([
          request.url,
          request.headers.get("authorization"),
          request.headers.get("cookie"),
        ]);
        return Promise.resolve(
          request.url === from
            ? new Response(null, { status: 302, headers: { location: to } })
            : new Response("ok"),
        );
      });
      await transport(
        new Request(from, {
          headers: {
            authorization: `${scheme} dG9rZW4xMjM0NQ==`,
            cookie: "s=1",
          },
        }),
      );
      assert.deepEqual(seen, [
        [from, `${scheme} dG9rZW4xMjM0NQ==`, "s=1"],
        [to, null, null],
      ]);
    });
  }
}

Deno.test("withRedirects() keeps credentials when only the path changes, even with the default port spelt out", async () => {
  const seen: (string | null)[] = [];
  const transport = withRedirects((request) => {
    seen.push(request.headers.get("authorization"));
    return Promise.resolve(
      request.url.endsWith("/a")
        ? new Response(null, {
          status: 307,
          headers: { location: "https://r.example:443/b" },
        })
        : new Response("ok"),
    );
  });
  await transport(
    new Request("https://r.example/a", {
      headers: { authorization: "Bearer t" },
    }),
  );
  assert.deepEqual(seen, ["Bearer t", "Bearer t"]);
});

const FROM_HTTPS = "https://registry.example/v2/app/manifests/v1";
const FROM_HTTP = "http://127.0.0.1:5000/v2/app/manifests/v1";

const REFUSED: [what: string, location: string, from: string, rule: string][] =
  [
    ["file:", "file:///etc/passwd", FROM_HTTP, "scheme"],
    ["uppercase FILE:", "FILE:///etc/passwd", FROM_HTTP, "scheme"],
    [
      "file: after spaces and control characters",
      " \x01\x1ffile:///etc/passwd ",
      FROM_HTTP,
      "scheme",
    ],
    [
      "file: with a tab inside the scheme",
      "fi\tle:///etc/passwd",
      FROM_HTTP,
      "scheme",
    ],
    [
      "file: with a newline inside",
      "file:\n///etc/passwd",
      FROM_HTTP,
      "scheme",
    ],
    ["file: with a host", "file://localhost/etc/passwd", FROM_HTTP, "scheme"],
    ["data:", "data:application/json,{}", FROM_HTTP, "scheme"],
    ["blob:", "blob:http://127.0.0.1:5000/uuid", FROM_HTTP, "scheme"],
    ["javascript:", "javascript:alert(1)", FROM_HTTP, "scheme"],
    ["ftp:", "ftp://127.0.0.1/x", FROM_HTTP, "scheme"],
    ["ws:", "ws://127.0.0.1/x", FROM_HTTP, "scheme"],
    ["a mistyped scheme", "htp://x/", FROM_HTTP, "scheme"],
    [
      "https to http on another host",
      "http://storage.example/b",
      FROM_HTTPS,
      "downgrade",
    ],
    [
      "https to http on the same host",
      "http://registry.example/b",
      FROM_HTTPS,
      "downgrade",
    ],
    [
      "https to http by uppercase scheme",
      "HTTP://storage.example/b",
      FROM_HTTPS,
      "downgrade",
    ],
    ["https to http on 10.0.0.1", "http://10.0.0.1/b", FROM_HTTPS, "downgrade"],
    ["not a URL", "http://[::1/", FROM_HTTP, "url"],
  ];

for (const [what, location, from, rule] of REFUSED) {
  Deno.test(`resolveRegistryUrl() refuses ${what}`, () => {
    assert.throws(
      () => resolveRegistryUrl(location, { from, header: "Location" }),
      (error: unknown) => {
        assert.ok(error instanceof UnsafeUrlError, String(error));
        assert.equal(error.rule, rule);
        assert.equal(error.header, "Location");
        assert.equal(error.from, from);
        assert.match(error.message, /^Refusing the Location "/);
        return true;
      },
    );
  });
}

const ACCEPTED: [what: string, location: string, from: string, href: string][] =
  [
    ["a path", "/v2/x", FROM_HTTPS, "https://registry.example/v2/x"],
    [
      "protocol-relative //host from https",
      "//cdn.example/b",
      FROM_HTTPS,
      "https://cdn.example/b",
    ],
    [
      "protocol-relative //host from http",
      "//127.0.0.2:9/b",
      FROM_HTTP,
      "http://127.0.0.2:9/b",
    ],
    [
      "https to http on loopback",
      "http://127.0.0.1:9/b",
      FROM_HTTPS,
      "http://127.0.0.1:9/b",
    ],
    [
      "https to http on localhost",
      "http://localhost:9/b",
      FROM_HTTPS,
      "http://localhost:9/b",
    ],
    [
      "https to http on [::1]",
      "http://[::1]:9/b",
      FROM_HTTPS,
      "http://[::1]:9/b",
    ],
    [
      "http to https",
      "https://storage.example/b",
      FROM_HTTP,
      "https://storage.example/b",
    ],
    [
      "uppercase HTTPS:",
      "HTTPS://storage.example/b",
      FROM_HTTP,
      "https://storage.example/b",
    ],
  ];

for (const [what, location, from, href] of ACCEPTED) {
  Deno.test(`resolveRegistryUrl() accepts ${what}`, () => {
    assert.equal(
      resolveRegistryUrl(location, { from, header: "Location" }).href,
      href,
    );
  });
}

Deno.test("resolveRegistryUrl() redacts the URL it refuses, and wants an absolute one when told", () => {
  assert.throws(
    () =>
      resolveRegistryUrl(
        "http://u:pw@storage.example/b?X-Amz-Signature=s3cr3t",
        {
          from: FROM_HTTPS,
          header: "Location",
        },
      ),
    (error: unknown) => {
      assert.ok(error instanceof UnsafeUrlError);
      assert.equal(
        error.url,
        "http://REDACTED@storage.example/b?X-Amz-Signature=REDACTED",
      );
      assert.doesNotMatch(error.message, /pw|s3cr3t/);
      return true;
    },
  );
  assert.throws(
    () =>
      resolveRegistryUrl("/token", {
        from: FROM_HTTPS,
        header: "realm",
        relative: false,
      }),
    (error: unknown) => error instanceof UnsafeUrlError && error.rule === "url",
  );
});

for (
  const location of [
    "file:///etc/passwd",
    "data:text/plain,local",
    " FILE:///etc/hostname",
  ]
) {
  Deno.test(`withRedirects() refuses Location ${JSON.stringify(location)} before fetch reads it`, async () => {
    await using registry = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response(null, { status: 307, headers: { location } }),
    );
    const sent: string[] = [];
    const transport = withRedirects((request) => {
      sent.push(request.url);
      return httpTransport(request);
    });
    await assert.rejects(
      transport(
        new Request(`http://127.0.0.1:${registry.addr.port}/v2/app/blobs/x`),
      ),
      (error: unknown) =>
        error instanceof UnsafeUrlError && error.rule === "scheme",
    );
    assert.equal(sent.length, 1);
  });
}

Deno.test("withRedirects() refuses a request to anything but http: and https:", async () => {
  const sent: string[] = [];
  const transport = withRedirects((request) => {
    sent.push(request.url);
    return Promise.resolve(new Response("read"));
  });
  for (const url of ["file:///etc/passwd", "data:,x"]) {
    await assert.rejects(
      transport(new Request(url)),
      (error: unknown) =>
        error instanceof UnsafeUrlError && error.header === "",
    );
  }
  assert.deepEqual(sent, []);
});

Deno.test("withRedirects() redacts the signed URL a failed fetch quotes", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const transport = withRedirects(httpTransport);
  const error = await transport(
    new Request(`http://127.0.0.1:${port}/b?X-Amz-Signature=s3cr3t-sig&part=1`),
  ).then(() => undefined, (error: unknown) => error);
  assert.ok(error instanceof Error);
  const text = everythingAbout(error);
  assert.doesNotMatch(text, /s3cr3t-sig/);
  assert.match(text, /X-Amz-Signature=REDACTED/);
});
