// The auth flows against the real CNCF distribution registry: htpasswd Basic auth, and its token
// auth with our token server in tests/support (RS256 JWTs, as Docker Hub and Harbor issue them).
import assert from "node:assert/strict";
import { createOpener } from "../../src/transport/opener.ts";
import { AuthenticationError } from "../../src/transport/auth.ts";
import { staticCredentials } from "../../src/transport/credentials.ts";
import { httpTransport } from "../../src/transport/http_transport.ts";
import { createRequest } from "../../src/transport/request_body.ts";
import type { Transport } from "../../src/transport/request_body.ts";
import {
  startDistribution,
  startTokenRegistry,
} from "../../peers/distribution.ts";
import { requirePeer } from "../../peers/available.ts";

/** The real transport, counting what the registry (not the token server) answered. */
function countingTransport(registryUrl: string) {
  const statuses: number[] = [];
  const transport: Transport = async (request) => {
    const response = await httpTransport(request);
    if (request.url.startsWith(registryUrl)) statuses.push(response.status);
    return response;
  };
  return {
    transport,
    statuses,
    unauthorized: () => statuses.filter((s) => s === 401).length,
  };
}

const needsRegistry = requirePeer("docker-registry", "htpasswd", "openssl");

Deno.test({
  name:
    "Basic auth against distribution's htpasswd: one 401, then credentials sent up front",
  ...needsRegistry,
  async fn() {
    await using registry = await startDistribution({
      htpasswd: { alice: "correct horse" },
    });
    const { transport, statuses, unauthorized } = countingTransport(
      registry.url,
    );
    const open = createOpener({
      transport,
      credentials: staticCredentials({
        [registry.host]: { username: "alice", password: "correct horse" },
      }),
    });
    for (let i = 0; i < 3; i++) {
      const response = await open(new Request(`${registry.url}/v2/`));
      assert.equal(response.status, 200);
      await response.body?.cancel();
    }
    assert.equal(unauthorized(), 1, `statuses: ${statuses}`);
    assert.equal(statuses.length, 4);
  },
});

Deno.test({
  name: "Basic auth with a wrong password is a clear AuthenticationError",
  ...needsRegistry,
  async fn() {
    await using registry = await startDistribution({
      htpasswd: { alice: "correct horse" },
    });
    const open = createOpener({
      credentials: staticCredentials({
        username: "alice",
        password: "wrong-SECRET",
      }),
    });
    await assert.rejects(
      open(new Request(`${registry.url}/v2/`)),
      (error: unknown) => {
        assert.ok(error instanceof AuthenticationError, String(error));
        assert.equal(error.status, 401);
        assert.equal(error.registry, registry.host);
        assert.match(
          error.message,
          /Cannot log in to 127\.0\.0\.1:\d+: the registry refused the credentials/,
        );
        assert.ok(!error.message.includes("SECRET"));
        return true;
      },
    );
  },
});

Deno.test({
  name: "Basic auth without credentials says none were found",
  ...needsRegistry,
  async fn() {
    await using registry = await startDistribution({
      htpasswd: { alice: "pw" },
    });
    const open = createOpener({
      credentials: () => Promise.resolve(undefined),
    });
    await assert.rejects(
      open(new Request(`${registry.url}/v2/app/tags/list`)),
      /none were found/,
    );
  },
});

Deno.test({
  name: "Bearer: an anonymous token is fetched for a pull and reused",
  ...needsRegistry,
  async fn() {
    await using setup = await startTokenRegistry();
    const { registry, tokens } = setup;
    const { transport, unauthorized } = countingTransport(registry.url);
    const open = createOpener({
      transport,
      credentials: () => Promise.resolve(undefined),
    });
    for (let i = 0; i < 4; i++) {
      const response = await open(
        new Request(`${registry.url}/v2/app/tags/list`),
      );
      // Authorised, and the repository does not exist yet.
      assert.equal(response.status, 404);
      assert.match(await response.text(), /NAME_UNKNOWN/);
    }
    assert.equal(unauthorized(), 1);
    assert.equal(tokens.requests.length, 1);
    const { scopes, user, status } = tokens.requests[0];
    assert.deepEqual({ scopes, user, status }, {
      scopes: ["repository:app:pull"],
      user: undefined,
      status: 200,
    });
  },
});

Deno.test({
  name:
    "Bearer: credentials get a push token, one 401 per scope, and an upload works",
  ...needsRegistry,
  async fn() {
    await using setup = await startTokenRegistry({ users: { bob: "builder" } });
    const { registry, tokens } = setup;
    const { transport, unauthorized } = countingTransport(registry.url);
    const open = createOpener({
      transport,
      credentials: staticCredentials({
        [registry.host]: { username: "bob", password: "builder" },
      }),
    });
    const bytes = new TextEncoder().encode("hello registry");
    const digest = `sha256:${
      Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
        .map((b) => b.toString(16).padStart(2, "0")).join("")
    }`;
    for (let round = 0; round < 2; round++) {
      const start = await open(
        createRequest(`${registry.url}/v2/team/app/blobs/uploads/`, {
          method: "POST",
          body: "",
        }),
      );
      assert.equal(start.status, 202);
      await start.body?.cancel();
      const location = new URL(start.headers.get("location")!, registry.url);
      location.searchParams.set("digest", digest);
      const put = await open(
        createRequest(location, { method: "PUT", body: bytes }),
      );
      assert.equal(put.status, 201, await put.text());
    }
    const head = await open(
      new Request(`${registry.url}/v2/team/app/blobs/${digest}`, {
        method: "HEAD",
      }),
    );
    assert.equal(head.status, 200);
    // One 401 for the push scope and one for the pull scope; everything else went with a token.
    assert.equal(unauthorized(), 2);
    // Distribution lists the actions of a challenge in no fixed order.
    const sortActions = (scope: string) =>
      scope.replace(/[^:]+$/, (actions) => actions.split(",").sort().join(","));
    assert.deepEqual(
      tokens.requests.map((r) => [r.user, r.scopes.map(sortActions).join(" ")]),
      [
        ["bob", "repository:team/app:pull,push"],
        ["bob", "repository:team/app:pull"],
      ],
    );
  },
});

Deno.test({
  name: "Bearer: an expired token is not sent; the client logs in again",
  ...needsRegistry,
  async fn() {
    await using setup = await startTokenRegistry({ expiresIn: 1 });
    const { registry, tokens } = setup;
    const { transport, unauthorized } = countingTransport(registry.url);
    let clock = 0;
    const open = createOpener({
      transport,
      credentials: () => Promise.resolve(undefined),
    });
    // The opener's clock is real; a second opener shows the same with an injected clock below.
    const get = async (opener: Transport) => {
      const response = await opener(
        new Request(`${registry.url}/v2/app/tags/list`),
      );
      assert.equal(response.status, 404);
      await response.body?.cancel();
    };
    await get(open);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await get(open);
    assert.equal(tokens.requests.length, 2);
    assert.equal(unauthorized(), 2);

    const { withAuth } = await import("../../src/transport/auth.ts");
    const clocked = withAuth(transport, { now: () => clock });
    await get(clocked);
    clock += 900;
    await get(clocked);
    assert.equal(tokens.requests.length, 3, "still valid at 0.9 s");
    clock += 200;
    await get(clocked);
    assert.equal(tokens.requests.length, 4, "expired at 1.1 s");
  },
});

Deno.test({
  name:
    "Bearer: a wrong password at the token server is a clear error naming registry and scope",
  ...needsRegistry,
  async fn() {
    await using setup = await startTokenRegistry({ users: { bob: "builder" } });
    const { registry } = setup;
    const open = createOpener({
      credentials: staticCredentials({
        username: "bob",
        password: "nope-SECRET",
      }),
    });
    await assert.rejects(
      open(new Request(`${registry.url}/v2/team/app/tags/list`)),
      (error: unknown) => {
        assert.ok(error instanceof AuthenticationError, String(error));
        assert.equal(error.status, 401);
        assert.match(
          error.message,
          new RegExp(
            `Cannot log in to ${
              registry.host.replace(/\./g, "\\.")
            } for repository:team/app:pull: the token server refused the credentials`,
          ),
        );
        assert.match(
          error.message,
          /UNAUTHORIZED: invalid username or password/,
        );
        assert.ok(!error.message.includes("SECRET"));
        return true;
      },
    );
  },
});

Deno.test({
  name: "Bearer: OAuth2 access_token responses without expires_in work",
  ...needsRegistry,
  async fn() {
    await using setup = await startTokenRegistry({
      field: "access_token",
      omitExpiresIn: true,
    });
    const { registry, tokens } = setup;
    const open = createOpener({
      credentials: () => Promise.resolve(undefined),
    });
    for (let i = 0; i < 2; i++) {
      const response = await open(
        new Request(`${registry.url}/v2/app/tags/list`),
      );
      assert.equal(response.status, 404);
      await response.body?.cancel();
    }
    assert.equal(tokens.requests.length, 1);
  },
});

Deno.test({
  name: "Bearer: anonymous clients cannot push, and the second 401 is an error",
  ...needsRegistry,
  async fn() {
    await using setup = await startTokenRegistry();
    const open = createOpener({
      credentials: () => Promise.resolve(undefined),
    });
    await assert.rejects(
      open(
        createRequest(`${setup.registry.url}/v2/app/blobs/uploads/`, {
          method: "POST",
          body: "",
        }),
      ),
      (error: unknown) => {
        assert.ok(error instanceof AuthenticationError);
        assert.match(
          error.message,
          /for repository:app:pull,push: the registry refused the credentials or token/,
        );
        return true;
      },
    );
  },
});
