// Secrets audit: the real `oci` process with --verbose against registries with Basic and Bearer
// auth, and against a hostile registry that echoes credentials back in its error bodies. No
// password, Basic credential, issued token or Authorization header may appear in anything the
// CLI prints, nor in the message, cause, fields or inspection of a thrown error.
import assert from "node:assert/strict";
import { createRegistry } from "../../src/server/handler.ts";
import { createRegistryAuth } from "../../src/server/auth.ts";
import { createOpener } from "../../src/transport/opener.ts";
import { staticCredentials } from "../../src/transport/credentials.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { listTags } from "../../src/store/remote/tags.ts";
import { fetchManifest } from "../../src/store/remote/manifests.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { bytesSource } from "../../src/transport/request_body.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { reportSummary } from "./summary.ts";
import { runCli } from "../support/cli.ts";
import { everythingAbout } from "../support/errors.ts";

const USER = "alice";
const PASSWORD = `pw-${crypto.randomUUID()}`;

/** A registry with auth, served so that every token it issues is recorded. */
async function recordingRegistry(token: boolean) {
  const tokens: string[] = [];
  const handler = createRegistry({
    auth: await createRegistryAuth({
      users: { [USER]: `{PLAIN}${PASSWORD}` },
      ...(token ? { token: {} } : {}),
    }),
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const response = await handler(request);
      if (new URL(request.url).pathname === "/token" && response.ok) {
        const body = await response.clone().json();
        for (const key of ["token", "access_token"]) {
          if (typeof body[key] === "string") tokens.push(body[key]);
        }
      }
      return response;
    },
  );
  return {
    host: `127.0.0.1:${server.addr.port}`,
    tokens,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A registry that asks for Basic, then answers every request with an error body that repeats
 * the Authorization header it got (and a header that does too). */
function echoingRegistry() {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const authorization = request.headers.get("authorization");
      if (!authorization) {
        return new Response(null, {
          status: 401,
          headers: { "www-authenticate": 'Basic realm="echo"' },
        });
      }
      const status = request.method === "GET" ? 500 : 400;
      return new Response(
        JSON.stringify({
          errors: [{
            code: "DENIED",
            message: `you sent ${authorization}`,
            detail: { authorization },
          }],
        }),
        {
          status: request.url.includes("/tags/") ? 403 : status,
          headers: {
            "content-type": "application/json",
            "x-echo": authorization,
          },
        },
      );
    },
  );
  return {
    host: `127.0.0.1:${server.addr.port}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

async function oci(
  args: string[],
  stdin?: string,
): Promise<{ code: number; text: string }> {
  const run = await runCli(args, {
    permissions: [
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-write",
      "--allow-env",
    ],
    stdin,
    env: { OCI_USERNAME: "", OCI_PASSWORD: "" },
  });
  return { code: run.code, text: run.stdout + run.stderr };
}

Deno.test("no password, token or Authorization header reaches output or errors", async () => {
  const secrets = () => [
    PASSWORD,
    btoa(`${USER}:${PASSWORD}`),
    ...bearer.tokens,
    ...basic.tokens,
  ];
  await using bearer = await recordingRegistry(true);
  await using basic = await recordingRegistry(false);
  await using echo = echoingRegistry();
  const work = await Deno.makeTempDir({ prefix: "oci-secrets-" });
  const outputs: { what: string; text: string }[] = [];
  let operations = 0;
  const run = async (what: string, args: string[], login = true) => {
    operations++;
    const result = await oci(
      login ? [...args, "--username", USER, "--password-stdin"] : args,
      login ? PASSWORD : undefined,
    );
    outputs.push({ what, text: result.text });
    return result;
  };
  try {
    await Deno.mkdir(`${work}/src`);
    await Deno.writeTextFile(`${work}/src/file.txt`, "secret-free content\n");
    for (const registry of [bearer, basic]) {
      const ref = `${registry.host}/team/app`;
      const cache = `${work}/cache-${registry.host.split(":")[1]}`;
      assert.equal(
        (await run("push", [
          "push",
          `${work}/src`,
          `${ref}:v1`,
          "--cache",
          cache,
          "-v",
        ])).code,
        0,
      );
      assert.equal((await run("tags", ["tags", ref, "-v"])).code, 0);
      assert.equal(
        (await run("copy", [
          "copy",
          `${ref}:v1`,
          `${registry.host}/team/copy:v1`,
          "-v",
        ])).code,
        0,
      );
      assert.equal(
        (await run("pull", [
          "pull",
          `${ref}:v1`,
          `${work}/out`,
          "--cache",
          cache,
          "-v",
        ])).code,
        0,
      );
      assert.equal(
        (await run("inspect", ["inspect", `${ref}:v1`, "-v", "--json"])).code,
        0,
      );
      // Failures: an unknown tag, and a wrong password.
      assert.equal(
        (await run("missing", ["inspect", `${ref}:nope`, "-v"])).code,
        1,
      );
      operations++;
      const wrong = await oci(
        ["tags", ref, "-v", "--username", USER, "--password-stdin"],
        `${PASSWORD}-wrong`,
      );
      assert.equal(wrong.code, 1);
      outputs.push({
        what: "wrong password",
        text: wrong.text.replaceAll(`${PASSWORD}-wrong`, "<the wrong one>"),
      });
    }
    assert.ok(bearer.tokens.length > 0, "the Bearer registry issued tokens");
    // A registry that echoes the credentials back: errors must not repeat them.
    assert.equal(
      (await run("echo tags", ["tags", `${echo.host}/team/app`, "-v"])).code,
      1,
    );
    assert.equal(
      (await run("echo inspect", ["inspect", `${echo.host}/team/app:v1`, "-v"]))
        .code,
      1,
    );

    // The library's thrown errors, against the same registries.
    const errors: unknown[] = [];
    const open = createOpener({
      credentials: staticCredentials({ username: USER, password: PASSWORD }),
      retry: { attempts: 2, baseDelay: 1 },
    });
    const wrong = createOpener({
      credentials: staticCredentials({
        username: USER,
        password: `${PASSWORD}x`,
      }),
      retry: false,
    });
    const attempts: [string, () => Promise<unknown>][] = [
      [
        "echo tags",
        () => listTags(parseReference(`${echo.host}/a`), { transport: open }),
      ],
      [
        "echo manifest",
        () =>
          fetchManifest(parseReference(`${echo.host}/a:v1`), {
            transport: open,
          }),
      ],
      [
        "echo upload",
        () =>
          remoteStore(parseReference(`${echo.host}/a`), { transport: open })
            .push({
              mediaType: "application/octet-stream",
              digest: digestOf(new Uint8Array([1])),
              size: 1,
            }, bytesSource(new Uint8Array([1]))),
      ],
      [
        "bearer unknown tag",
        () =>
          fetchManifest(parseReference(`${bearer.host}/team/app:nope`), {
            transport: open,
          }),
      ],
      [
        "bearer wrong password",
        () =>
          listTags(parseReference(`${bearer.host}/team/app`), {
            transport: wrong,
          }),
      ],
      [
        "basic wrong password",
        () =>
          listTags(parseReference(`${basic.host}/team/app`), {
            transport: wrong,
          }),
      ],
    ];
    for (const [what, attempt] of attempts) {
      operations++;
      try {
        await attempt();
        assert.fail(`${what} should have failed`);
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        errors.push(error);
        outputs.push({
          what: `thrown by ${what}`,
          text: everythingAbout(error),
        });
      }
    }

    const hits: string[] = [];
    for (const { what, text } of outputs) {
      for (const secret of secrets()) {
        if (text.includes(secret)) hits.push(`${what}: contains a secret`);
      }
      if (/authorization"?\s*[:=]\s*"?(?!REDACTED)[A-Za-z0-9]/i.test(text)) {
        hits.push(`${what}: prints an Authorization header`);
      }
      if (/\b(Basic|Bearer) (?!REDACTED)[A-Za-z0-9+/=._-]{8,}/.test(text)) {
        hits.push(
          `${what}: prints a credential: ${
            text.match(/\b(Basic|Bearer) (?!REDACTED)[A-Za-z0-9+/=._-]{8,}/)![0]
              .slice(
                0,
                12,
              )
          }…`,
        );
      }
    }
    await reportSummary("secrets", {
      operations,
      faults: 0,
      retries: 0,
      failures: 0,
      corrupt: 0,
      leaked: hits.length,
      extra: { outputs: outputs.length, tokensIssued: bearer.tokens.length },
    });
    assert.deepEqual(hits, []);
    // The errors are still useful: they name the request and the registry's code.
    assert.match(String(errors[0]), /tags\/list: 403.*DENIED/);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("credentials go only to the registry that asked and its token realm, never to a redirect's origin", async () => {
  const { serveRegistry } = await import("../../src/server/serve.ts");
  const { fetchBlob } = await import("../../src/store/remote/blobs.ts");
  const seenByStorage: (string | null)[] = [];
  await using storage = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      seenByStorage.push(request.headers.get("authorization"));
      return new Response("blob from storage");
    },
  );
  const bytes = new TextEncoder().encode("blob from storage");
  const digest = digestOf(bytes);
  let leaked = 0;
  for (const token of [false, true]) {
    await using registry = await serveRegistry({
      auth: {
        users: { [USER]: `{PLAIN}${PASSWORD}` },
        ...(token ? { token: {} } : {}),
      },
      // "localhost" is another origin than the registry's "127.0.0.1".
      redirectBlob: () => `http://localhost:${storage.addr.port}/signed`,
    });
    const sentTo = new Set<string>();
    const open = createOpener({
      credentials: staticCredentials({ username: USER, password: PASSWORD }),
      transport: async (request) => {
        if (request.headers.has("authorization")) {
          sentTo.add(new URL(request.url).origin);
        }
        return await fetch(request, { redirect: "manual" });
      },
    });
    const ref = parseReference(`${registry.host}/team/app`);
    await remoteStore(ref, { transport: open }).push({
      mediaType: "application/octet-stream",
      digest,
      size: bytes.byteLength,
    }, bytesSource(bytes));
    const text = await new Response(
      await fetchBlob(ref, digest, { transport: open }),
    ).text();
    assert.equal(text, "blob from storage");
    // The registry (and its own /token realm) got credentials; the storage origin did not.
    assert.deepEqual([...sentTo], [`http://${registry.host}`]);
    leaked += seenByStorage.filter((header) => header !== null).length;
  }
  assert.equal(seenByStorage.length, 2);
  await reportSummary("redirects", {
    operations: 4,
    faults: 0,
    retries: 0,
    failures: 0,
    corrupt: 0,
    leaked,
    extra: { storageRequests: seenByStorage.length },
  });
  assert.equal(leaked, 0);
});

/** A registry serving one image whose config blob is redirected to `location(storagePort)`. */
function redirectingRegistry(location: (storagePort: number) => string) {
  const config = new TextEncoder().encode(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [] },
    }),
  );
  const configDigest = digestOf(config);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: config.byteLength,
    },
    layers: [],
  });
  const storage = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(config),
  );
  const registry = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const path = new URL(request.url).pathname;
      if (path.includes("/manifests/")) {
        return new Response(manifest, {
          headers: {
            "content-type": "application/vnd.oci.image.manifest.v1+json",
          },
        });
      }
      if (path.endsWith(`/blobs/${configDigest}`)) {
        return new Response(null, {
          status: 307,
          headers: { location: location(storage.addr.port) },
        });
      }
      return new Response(null, { status: 404 });
    },
  );
  return {
    host: `127.0.0.1:${registry.addr.port}`,
    async [Symbol.asyncDispose]() {
      await registry.shutdown();
      await storage.shutdown();
    },
  };
}

function deadPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

Deno.test("--verbose prints no secret of a pre-signed URL's query or of a URL's userinfo", async () => {
  const secret = () => `s${crypto.randomUUID().replaceAll("-", "")}`;
  const cases: {
    what: string;
    secrets: string[];
    location: (port: number) => string;
    ok: boolean;
  }[] = [];
  for (
    const [what, query] of [
      [
        "S3",
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s&X-Amz-Signature=%s&X-Amz-Security-Token=%s",
      ],
      ["GCS", "X-Goog-Credential=%s&X-Goog-Signature=%s"],
      ["Azure SAS", "sv=2022-11-02&sp=r&sig=%s"],
      ["token", "token=%s&access_token=%s"],
    ] as const
  ) {
    const secrets = [secret(), secret(), secret()];
    let i = 0;
    const filled = query.replaceAll("%s", () => secrets[i++ % secrets.length]);
    cases.push({
      what,
      secrets: secrets.slice(0, i),
      location: (port) => `http://127.0.0.1:${port}/blob?${filled}`,
      ok: true,
    });
  }
  const user = secret();
  const pass = secret();
  cases.push({
    what: "userinfo",
    secrets: [user, pass],
    location: (port) => `http://${user}:${pass}@127.0.0.1:${port}/blob`,
    ok: true,
  });
  const signature = secret();
  const dead = deadPort();
  cases.push({
    what: "a signed URL whose fetch fails",
    secrets: [signature],
    location: () =>
      `http://127.0.0.1:${dead}/blob?X-Amz-Signature=${signature}`,
    ok: false,
  });
  let leaked = 0;
  for (const { what, secrets, location, ok } of cases) {
    await using registry = redirectingRegistry(location);
    const run = await oci([
      "inspect",
      `${registry.host}/app:v1`,
      "--config",
      "-v",
    ]);
    assert.equal(run.code, ok ? 0 : 1, `${what}: ${run.text}`);
    // The storage request is logged, with its secrets redacted.
    assert.match(
      run.text,
      /GET http:\/\/(REDACTED@)?127\.0\.0\.1:\d+\/blob/,
      what,
    );
    for (const value of secrets) {
      if (run.text.includes(value)) {
        leaked++;
        assert.fail(`${what}: --verbose printed a secret: ${run.text}`);
      }
    }
  }
  await reportSummary("verbose", {
    operations: cases.length,
    faults: 0,
    retries: 0,
    failures: 0,
    corrupt: 0,
    leaked,
  });
});

Deno.test("the CLI prints no form of the password a registry echoes, in its errors or --verbose lines", async () => {
  const password = `p@ss "w\\rd" +/& ${crypto.randomUUID()}`;
  const basic = btoa(`${USER}:${password}`);
  await using registry = (() => {
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request) => {
        const authorization = request.headers.get("authorization");
        if (!authorization) {
          return new Response(null, {
            status: 401,
            headers: { "www-authenticate": 'Basic realm="echo"' },
          });
        }
        const sent = atob(authorization.slice("Basic ".length)).split(":")
          .slice(1).join(":");
        return Response.json({
          errors: [{
            code: "DENIED",
            message: `you sent password=${sent} (${encodeURIComponent(sent)})`,
            detail: `${JSON.stringify(sent)} ${authorization.slice(6)}`,
          }],
        }, { status: 403 });
      },
    );
    return {
      host: `127.0.0.1:${server.addr.port}`,
      [Symbol.asyncDispose]: () => server.shutdown(),
    };
  })();
  const run = await oci(
    [
      "tags",
      `${registry.host}/app`,
      "-v",
      "--username",
      USER,
      "--password-stdin",
    ],
    password,
  );
  assert.equal(run.code, 1);
  assert.match(run.text, /DENIED: you sent password=REDACTED/);
  for (
    const form of [
      password,
      encodeURIComponent(password),
      JSON.stringify(password).slice(1, -1),
      basic,
    ]
  ) {
    assert.ok(!run.text.includes(form), run.text);
  }
});
