/**
 * The catalog: listRepositories() follows `Link` pages on every backend; the embedded registry
 * serves `GET /v2/_catalog` with `n`, `last` and `Link`, and asks for the token scope
 * `registry:catalog:*` as distribution does.
 */
import assert from "node:assert/strict";
import { parseReference } from "../../src/oci/reference.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { listRepositories } from "../../src/store/remote/catalog.ts";
import { pushArtifact } from "../../src/image/artifact.ts";
import { createRegistry } from "../../src/server/mod.ts";
import { createRegistryAuth } from "../../src/server/auth.ts";
import { layoutRepositories } from "../../src/server/repositories.ts";
import { createOpener } from "../../src/transport/opener.ts";
import { staticCredentials } from "../../src/transport/credentials.ts";
import type { Transport } from "../../src/transport/request_body.ts";
import { registryTest } from "../support/registries.ts";
import { recordingOpener } from "../support/recording.ts";

const NAMES = ["a", "b/c", "b/c/d", "team/app", "zeta"];

async function pushNames(
  host: string,
  transport: Transport,
  names: readonly string[],
) {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, "x");
    for (const name of names) {
      await pushArtifact(
        remoteStore(parseReference(`${host}/${name}`), { transport }),
        [{ path }],
        { artifactType: "application/x.test", tag: "v1" },
      );
    }
  } finally {
    await Deno.remove(path);
  }
}

registryTest(
  "listRepositories() lists every repository, following Link pages",
  async (start) => {
    await using registry = await start();
    const { transport, log } = recordingOpener();
    await pushNames(registry.host, transport, NAMES);
    const host = { registry: registry.host, scheme: "http" as const };
    assert.deepEqual(await listRepositories(host, { transport }), NAMES);
    log.length = 0;
    assert.deepEqual(
      await listRepositories(host, { transport, pageSize: 2 }),
      NAMES,
    );
    assert.equal(log.filter((l) => l.includes("_catalog")).length, 3);
  },
);

Deno.test("GET /v2/_catalog pages with n and last, and a Link to the next page", async () => {
  const registry = createRegistry();
  const { transport } = { transport: registry as Transport };
  await pushNames("127.0.0.1:5000", transport, NAMES);
  const get = (query: string) =>
    registry(new Request(`http://127.0.0.1:5000/v2/_catalog${query}`));
  let response = await get("?n=2");
  assert.deepEqual(await response.json(), { repositories: ["a", "b/c"] });
  assert.equal(
    response.headers.get("link"),
    '</v2/_catalog?n=2&last=b%2Fc>; rel="next"',
  );
  response = await get("?n=2&last=team%2Fapp");
  assert.deepEqual(await response.json(), { repositories: ["zeta"] });
  assert.equal(response.headers.get("link"), null);
  response = await get("?n=x");
  assert.equal(response.status, 400);
  assert.match(await response.text(), /PAGINATION_NUMBER_INVALID/);
  response = await registry(
    new Request("http://127.0.0.1:5000/v2/_catalog", { method: "POST" }),
  );
  assert.equal(response.status, 405);
  await response.body?.cancel();
});

Deno.test("the catalog of an on-disk registry lists nested repositories, not its own directories", async () => {
  const root = await Deno.makeTempDir();
  try {
    const registry = createRegistry({
      repositories: await layoutRepositories(root),
    });
    await pushNames("127.0.0.1:5000", registry, NAMES);
    // A repository whose name was used but no manifest pushed is not listed.
    const upload = await registry(
      new Request("http://127.0.0.1:5000/v2/empty/blobs/uploads/", {
        method: "POST",
      }),
    );
    await upload.body?.cancel();
    assert.deepEqual(
      await listRepositories({ registry: "127.0.0.1:5000", scheme: "http" }, {
        transport: registry,
      }),
      NAMES,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("the catalog asks for registry:catalog:*, granted to users who logged in only", async () => {
  const auth = await createRegistryAuth({
    users: { alice: "{PLAIN}secret" },
    token: { anonymousPull: true },
  });
  const registry = createRegistry({ auth });
  const request = new Request("http://127.0.0.1:5000/v2/_catalog");
  const denied = await registry(request.clone());
  assert.equal(denied.status, 401);
  assert.match(
    denied.headers.get("www-authenticate") ?? "",
    /scope="registry:catalog:\*"/,
  );
  await denied.body?.cancel();
  const host = { registry: "127.0.0.1:5000", scheme: "http" as const };
  const withAlice = createOpener({
    transport: registry,
    credentials: staticCredentials({
      "127.0.0.1:5000": { username: "alice", password: "secret" },
    }),
  });
  assert.deepEqual(await listRepositories(host, { transport: withAlice }), []);
  const anonymous = createOpener({
    transport: registry,
    credentials: () => Promise.resolve(undefined),
  });
  await assert.rejects(
    listRepositories(host, { transport: anonymous }),
    /401|registry:catalog/,
  );
  // A repository's grant named "catalog" is not the catalog's.
  const token = await (await registry(
    new Request(
      "http://127.0.0.1:5000/token?scope=repository:catalog:pull",
      { headers: { authorization: `Basic ${btoa("alice:secret")}` } },
    ),
  )).json();
  const refused = await registry(
    new Request("http://127.0.0.1:5000/v2/_catalog", {
      headers: { authorization: `Bearer ${token.token}` },
    }),
  );
  assert.equal(refused.status, 401);
  assert.match(await refused.text(), /registry:catalog/);
});
