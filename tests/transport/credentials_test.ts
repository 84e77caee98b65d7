import assert from "node:assert/strict";
import {
  chainCredentials,
  type CredentialProvider,
  type Credentials,
  dockerConfigCredentials,
  environmentCredentials,
  normalizeRegistry,
  staticCredentials,
} from "../../src/transport/credentials.ts";

const MODULE_URL =
  new URL("../../src/transport/credentials.ts", import.meta.url)
    .href;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "oci_credentials_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes `config` (JSON, or text as is) to `<dir>/config.json` and returns that path. */
async function writeConfig(dir: string, config: unknown): Promise<string> {
  const path = `${dir}/config.json`;
  await Deno.writeTextFile(
    path,
    typeof config === "string" ? config : JSON.stringify(config),
  );
  return path;
}

function base64Utf8(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

function envOf(vars: Record<string, string>): (name: string) => string {
  return (name) => vars[name];
}

/** Checks that nothing printable about `error` holds any of `secrets`. */
function assertNoSecret(error: unknown, ...secrets: string[]): void {
  const seen = [
    String(error),
    (error as Error).stack ?? "",
    String((error as Error).cause ?? ""),
  ].join("\n");
  for (const secret of secrets) {
    assert.ok(!seen.includes(secret), `"${secret}" leaked into: ${seen}`);
  }
}

/** Awaits a rejection and hands back the error. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof Error, String(error));
    return error;
  }
  assert.fail("expected a rejection");
}

Deno.test("normalizeRegistry() makes config keys and registry names comparable", () => {
  const cases: [string, string][] = [
    ["https://index.docker.io/v1/", "docker.io"],
    ["index.docker.io", "docker.io"],
    ["registry-1.docker.io", "docker.io"],
    ["registry.hub.docker.com", "docker.io"],
    ["docker.io", "docker.io"],
    ["Docker.IO", "docker.io"],
    ["https://ghcr.io", "ghcr.io"],
    ["https://ghcr.io/", "ghcr.io"],
    ["ghcr.io/v2/", "ghcr.io"],
    ["http://127.0.0.1:5000/", "127.0.0.1:5000"],
    ["127.0.0.1:5000", "127.0.0.1:5000"],
    ["localhost:5000", "localhost:5000"],
    ["Quay.IO", "quay.io"],
    [" quay.io ", "quay.io"],
  ];
  for (const [input, expected] of cases) {
    assert.equal(normalizeRegistry(input), expected, input);
  }
});

Deno.test("staticCredentials() with one set answers for every registry", async () => {
  const password = staticCredentials({ username: "u", password: "p" });
  assert.deepEqual(await password("ghcr.io"), { username: "u", password: "p" });
  assert.deepEqual(await password("127.0.0.1:5000"), {
    username: "u",
    password: "p",
  });
  const token = staticCredentials({ identityToken: "idt" });
  assert.deepEqual(await token("myacr.azurecr.io"), { identityToken: "idt" });
});

Deno.test("staticCredentials() with a record answers per normalised registry", async () => {
  const provider = staticCredentials({
    "https://index.docker.io/v1/": { identityToken: "idt" },
    "GHCR.io": { username: "gh", password: "ghp" },
    // A registry literally named like a field does not make the record a single set.
    password: { username: "x", password: "y" },
  });
  assert.deepEqual(await provider("docker.io"), { identityToken: "idt" });
  assert.deepEqual(await provider("registry-1.docker.io"), {
    identityToken: "idt",
  });
  assert.deepEqual(await provider("ghcr.io"), {
    username: "gh",
    password: "ghp",
  });
  assert.deepEqual(await provider("password"), {
    username: "x",
    password: "y",
  });
  assert.equal(await provider("quay.io"), undefined);
  assert.equal(await staticCredentials({})("ghcr.io"), undefined);
});

Deno.test("environmentCredentials() without OCI_REGISTRY answers for every registry", async () => {
  const provider = environmentCredentials({
    env: envOf({ OCI_USERNAME: "u", OCI_PASSWORD: "p" }),
  });
  assert.deepEqual(await provider("ghcr.io"), { username: "u", password: "p" });
  assert.deepEqual(await provider("docker.io"), {
    username: "u",
    password: "p",
  });
});

Deno.test("environmentCredentials() with OCI_REGISTRY answers only for that registry", async () => {
  const vars = {
    OCI_USERNAME: "u",
    OCI_PASSWORD: "p",
    OCI_REGISTRY: "https://index.docker.io/v1/",
  };
  const provider = environmentCredentials({ env: envOf(vars) });
  assert.deepEqual(await provider("docker.io"), {
    username: "u",
    password: "p",
  });
  assert.deepEqual(await provider("index.docker.io"), {
    username: "u",
    password: "p",
  });
  assert.equal(await provider("ghcr.io"), undefined);
  const withPort = environmentCredentials({
    env: envOf({ ...vars, OCI_REGISTRY: "127.0.0.1:5000" }),
  });
  assert.deepEqual(await withPort("127.0.0.1:5000"), {
    username: "u",
    password: "p",
  });
  assert.equal(await withPort("127.0.0.1:5001"), undefined);
});

Deno.test("environmentCredentials() treats missing or empty variables as unset", async () => {
  const cases: Record<string, string>[] = [
    {},
    { OCI_USERNAME: "u" },
    { OCI_PASSWORD: "p" },
    { OCI_USERNAME: "u", OCI_PASSWORD: "" },
    { OCI_USERNAME: "", OCI_PASSWORD: "p" },
  ];
  for (const vars of cases) {
    const provider = environmentCredentials({ env: envOf(vars) });
    assert.equal(await provider("ghcr.io"), undefined, JSON.stringify(vars));
  }
  const emptyScope = environmentCredentials({
    env: envOf({ OCI_USERNAME: "u", OCI_PASSWORD: "p", OCI_REGISTRY: "" }),
  });
  assert.deepEqual(await emptyScope("ghcr.io"), {
    username: "u",
    password: "p",
  });
});

/**
 * Runs `code` in a fresh Deno with only the given environment and permission flags, and
 * answers what it printed.
 */
async function runIsolated(
  code: string,
  flags: string[],
  env: Record<string, string>,
): Promise<string> {
  let output = "";
  await withTempDir(async (dir) => {
    const script = `${dir}/main.ts`;
    await Deno.writeTextFile(script, code);
    const denoDir = Deno.env.get("DENO_DIR");
    const result = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--no-prompt", ...flags, script],
      clearEnv: true,
      env: {
        ...env,
        PATH: Deno.env.get("PATH") ?? "",
        ...(denoDir ? { DENO_DIR: denoDir } : {}),
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(result.stderr);
    assert.equal(result.code, 0, stderr);
    output = new TextDecoder().decode(result.stdout).trim();
  });
  return output;
}

Deno.test("environmentCredentials() reads the process environment when allowed", async () => {
  const output = await runIsolated(
    `import { environmentCredentials } from "${MODULE_URL}";
console.log(JSON.stringify(await environmentCredentials()("ghcr.io")));`,
    ["--allow-env=OCI_USERNAME,OCI_PASSWORD,OCI_REGISTRY"],
    { OCI_USERNAME: "envuser", OCI_PASSWORD: "envpass" },
  );
  assert.deepEqual(JSON.parse(output), {
    username: "envuser",
    password: "envpass",
  });
});

Deno.test("environmentCredentials() and defaultCredentials() answer undefined without env permission", async () => {
  const output = await runIsolated(
    `import { defaultCredentials, environmentCredentials } from "${MODULE_URL}";
console.log(String(await environmentCredentials()("ghcr.io")));
console.log(String(await defaultCredentials()("ghcr.io")));`,
    [],
    { OCI_USERNAME: "envuser", OCI_PASSWORD: "envpass", HOME: "/nonexistent" },
  );
  assert.equal(output, "undefined\nundefined");
});

Deno.test("defaultCredentials() prefers the environment, then reads ~/.docker/config.json", async () => {
  await withTempDir(async (home) => {
    await Deno.mkdir(`${home}/.docker`);
    await writeConfig(`${home}/.docker`, {
      auths: { "ghcr.io": { auth: btoa("file-user:file-pass") } },
    });
    const code = `import { defaultCredentials } from "${MODULE_URL}";
const provider = defaultCredentials();
console.log(JSON.stringify([await provider("ghcr.io"), await provider("quay.io") ?? null]));`;
    const flags = ["--allow-env", `--allow-read=${home}`];
    assert.deepEqual(
      JSON.parse(await runIsolated(code, flags, { HOME: home })),
      [
        { username: "file-user", password: "file-pass" },
        null,
      ],
    );
    const scoped = {
      HOME: home,
      OCI_USERNAME: "env-user",
      OCI_PASSWORD: "env-pass",
      OCI_REGISTRY: "quay.io",
    };
    assert.deepEqual(JSON.parse(await runIsolated(code, flags, scoped)), [
      { username: "file-user", password: "file-pass" },
      { username: "env-user", password: "env-pass" },
    ]);
    const everywhere = { ...scoped, OCI_REGISTRY: "" };
    assert.deepEqual(JSON.parse(await runIsolated(code, flags, everywhere)), [
      { username: "env-user", password: "env-pass" },
      { username: "env-user", password: "env-pass" },
    ]);
  });
});

Deno.test("dockerConfigCredentials() reads every auths entry form", async () => {
  await withTempDir(async (dir) => {
    const path = await writeConfig(dir, {
      auths: {
        "https://index.docker.io/v1/": { auth: btoa("hubuser:pa:ss:") },
        "ghcr.io": { username: "gh", password: "ghp" },
        "https://quay.io/v2/": { identitytoken: "refresh-me" },
        "myacr.azurecr.io": {
          auth: btoa("00000000-0000-0000-0000-000000000000:"),
          identitytoken: "acr-refresh",
        },
        "named.io": { username: "named", identitytoken: "named-refresh" },
        "http://127.0.0.1:5000/": { auth: btoa("local:pw") },
        "unicode.io": { auth: base64Utf8("\u00fcser:p\u00e4ss") },
        "empty.io": {},
        "null.io": { auth: null },
      },
    });
    const provider = dockerConfigCredentials({ path });
    const expected: [string, Credentials | undefined][] = [
      ["docker.io", { username: "hubuser", password: "pa:ss:" }],
      ["index.docker.io", { username: "hubuser", password: "pa:ss:" }],
      ["ghcr.io", { username: "gh", password: "ghp" }],
      ["quay.io", { identityToken: "refresh-me" }],
      ["myacr.azurecr.io", {
        identityToken: "acr-refresh",
        username: "00000000-0000-0000-0000-000000000000",
      }],
      ["named.io", { identityToken: "named-refresh", username: "named" }],
      ["127.0.0.1:5000", { username: "local", password: "pw" }],
      ["unicode.io", { username: "\u00fcser", password: "p\u00e4ss" }],
      ["empty.io", undefined],
      ["null.io", undefined],
      ["other.io", undefined],
    ];
    for (const [registry, credentials] of expected) {
      assert.deepEqual(await provider(registry), credentials, registry);
    }
  });
});

Deno.test("dockerConfigCredentials() prefers an exact key over an alias", async () => {
  await withTempDir(async (dir) => {
    const path = await writeConfig(dir, {
      auths: {
        "registry-1.docker.io": { auth: btoa("alias:1") },
        "https://index.docker.io/v1/": { auth: btoa("exact:2") },
        "https://ghcr.io": { auth: btoa("alias:3") },
        "ghcr.io": { auth: btoa("exact:4") },
      },
    });
    const provider = dockerConfigCredentials({ path });
    assert.deepEqual(await provider("docker.io"), {
      username: "exact",
      password: "2",
    });
    assert.deepEqual(await provider("ghcr.io"), {
      username: "exact",
      password: "4",
    });
  });
});

Deno.test("dockerConfigCredentials() finds the file through DOCKER_CONFIG, then HOME", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/docker-config`);
    await Deno.mkdir(`${dir}/home/.docker`, { recursive: true });
    await writeConfig(`${dir}/docker-config`, {
      auths: { "a.io": { auth: btoa("from-docker-config:1") } },
    });
    await writeConfig(`${dir}/home/.docker`, {
      auths: { "a.io": { auth: btoa("from-home:2") } },
    });
    const both = dockerConfigCredentials({
      env: envOf({
        DOCKER_CONFIG: `${dir}/docker-config`,
        HOME: `${dir}/home`,
      }),
    });
    assert.deepEqual(await both("a.io"), {
      username: "from-docker-config",
      password: "1",
    });
    const home = dockerConfigCredentials({
      env: envOf({ HOME: `${dir}/home` }),
    });
    assert.deepEqual(await home("a.io"), {
      username: "from-home",
      password: "2",
    });
    const windows = dockerConfigCredentials({
      env: envOf({ USERPROFILE: `${dir}/home` }),
    });
    assert.deepEqual(await windows("a.io"), {
      username: "from-home",
      password: "2",
    });
    const explicit = dockerConfigCredentials({
      path: `${dir}/home/.docker/config.json`,
      env: envOf({ DOCKER_CONFIG: `${dir}/docker-config` }),
    });
    assert.deepEqual(await explicit("a.io"), {
      username: "from-home",
      password: "2",
    });
  });
});

Deno.test("dockerConfigCredentials() answers undefined when there is no config file", async () => {
  await withTempDir(async (dir) => {
    const cases = [
      dockerConfigCredentials({ env: envOf({ HOME: `${dir}/nowhere` }) }),
      dockerConfigCredentials({ env: envOf({ DOCKER_CONFIG: dir }) }),
      dockerConfigCredentials({ env: envOf({}) }),
      dockerConfigCredentials({ path: `${dir}/missing.json` }),
    ];
    for (const provider of cases) {
      assert.equal(await provider("ghcr.io"), undefined);
    }
  });
});

Deno.test("dockerConfigCredentials() names the file of invalid JSON and never quotes its content", async () => {
  await withTempDir(async (dir) => {
    const path = await writeConfig(
      dir,
      '{"auths": {"a.io": {"auth": "c2VjcmV0OnNlY3JldA=="} x',
    );
    const error = await rejection(dockerConfigCredentials({ path })("a.io"));
    assert.ok(error instanceof SyntaxError);
    assert.equal(
      error.message,
      `Cannot read Docker credentials from "${path}": it is not valid JSON (line 1 column 53)`,
    );
    assertNoSecret(error, "c2VjcmV0");
  });
});

Deno.test("dockerConfigCredentials() refuses a config that does not have Docker's shape", async () => {
  const cases: [unknown, string][] = [
    [[], "it is not a JSON object"],
    ["null", "it is not a JSON object"],
    [{ auths: [] }, '"auths" is not an object'],
    [{ auths: { "a.io": "SECRET" } }, '"auths" entry "a.io" is not an object'],
    [
      { auths: { "a.io": { password: 12345 } } },
      '"password" of "auths" entry "a.io" is not a string',
    ],
    [
      { credHelpers: { "a.io": 1 } },
      '"credHelpers" entry "a.io" is not a string',
    ],
    [{ credsStore: true }, '"credsStore" is not a string'],
  ];
  for (const [config, reason] of cases) {
    await withTempDir(async (dir) => {
      const path = await writeConfig(dir, config);
      const error = await rejection(dockerConfigCredentials({ path })("a.io"));
      assert.ok(error instanceof TypeError);
      assert.equal(
        error.message,
        `Cannot read Docker credentials from "${path}": ${reason}`,
      );
      assertNoSecret(error, "SECRET", "12345");
    });
  }
});

Deno.test("dockerConfigCredentials() refuses an auth value that does not decode, without quoting it", async () => {
  const cases: [string, RegExp, string][] = [
    [
      btoa("no-colon-SECRET"),
      /does not decode to "username:password"/,
      "SECRET",
    ],
    ["not base64 SECRET!", /is not base64 of UTF-8 text/, "SECRET"],
    [btoa("\xff\xfe:SECRET"), /is not base64 of UTF-8 text/, "SECRET"],
  ];
  for (const [auth, reason, secret] of cases) {
    await withTempDir(async (dir) => {
      const path = await writeConfig(dir, { auths: { "a.io": { auth } } });
      const error = await rejection(dockerConfigCredentials({ path })("a.io"));
      assert.ok(error instanceof SyntaxError);
      assert.ok(error.message.includes(`"${path}"`));
      assert.match(error.message, reason);
      assertNoSecret(error, secret, auth);
    });
  }
});

/** A helper runner that records its calls and answers from a table. */
function fakeRunner(answers: Record<string, string | undefined>): {
  calls: string[];
  runHelper: (helper: string, serverUrl: string) => Promise<string | undefined>;
} {
  const calls: string[] = [];
  return {
    calls,
    runHelper(helper, serverUrl) {
      calls.push(`${helper} ${serverUrl}`);
      return Promise.resolve(answers[`${helper} ${serverUrl}`]);
    },
  };
}

Deno.test("dockerConfigCredentials() asks credHelpers first, then auths, then credsStore", async () => {
  await withTempDir(async (dir) => {
    const path = await writeConfig(dir, {
      auths: {
        "ghcr.io": { auth: btoa("file-user:file-pass") },
        "plain.io": { auth: btoa("p:q") },
        "stored.io": {},
      },
      credHelpers: { "ghcr.io": "gh", "https://helped.io": "gh" },
      credsStore: "store",
    });
    const { calls, runHelper } = fakeRunner({
      "gh ghcr.io": JSON.stringify({
        ServerURL: "ghcr.io",
        Username: "helper-user",
        Secret: "helper-pass",
      }),
      "store stored.io": JSON.stringify({
        ServerURL: "stored.io",
        Username: "store-user",
        Secret: "store-pass",
      }),
      "store https://index.docker.io/v1/": JSON.stringify({
        ServerURL: "https://index.docker.io/v1/",
        Username: "<token>",
        Secret: "hub-identity-token",
      }),
    });
    const provider = dockerConfigCredentials({ path, runHelper });
    assert.deepEqual(await provider("ghcr.io"), {
      username: "helper-user",
      password: "helper-pass",
    });
    assert.deepEqual(await provider("plain.io"), {
      username: "p",
      password: "q",
    });
    assert.deepEqual(await provider("stored.io"), {
      username: "store-user",
      password: "store-pass",
    });
    assert.deepEqual(await provider("docker.io"), {
      identityToken: "hub-identity-token",
    });
    // A credHelpers entry that has nothing does not fall back to auths or credsStore.
    assert.equal(await provider("helped.io"), undefined);
    assert.equal(await provider("unknown.io"), undefined);
    assert.deepEqual(calls, [
      "gh ghcr.io",
      "store stored.io",
      "store https://index.docker.io/v1/",
      "gh helped.io",
      "store unknown.io",
    ]);
  });
});

Deno.test("dockerConfigCredentials() treats an empty helper answer as no credentials", async () => {
  await withTempDir(async (dir) => {
    const path = await writeConfig(dir, { credsStore: "store" });
    for (const answer of ["", "{}", '{"Username":"u","Secret":""}']) {
      const { runHelper } = fakeRunner({ "store a.io": answer });
      const provider = dockerConfigCredentials({ path, runHelper });
      assert.equal(await provider("a.io"), undefined, answer);
    }
  });
});

Deno.test("dockerConfigCredentials() refuses a helper answer that is not a JSON object, without quoting it", async () => {
  await withTempDir(async (dir) => {
    const path = await writeConfig(dir, { credsStore: "store" });
    for (const answer of ["Secret: SECRET", '["SECRET"]']) {
      const { runHelper } = fakeRunner({ "store a.io": answer });
      const error = await rejection(
        dockerConfigCredentials({ path, runHelper })("a.io"),
      );
      assert.match(
        error.message,
        /^Cannot read the answer of credential helper "docker-credential-store": it is not (JSON|a JSON object)$/,
      );
      assertNoSecret(error, "SECRET");
    }
  });
});

const HELPER_SCRIPT = `#!/bin/sh
[ "$1" = get ] || { echo "unexpected arguments: $*" >&2; exit 2; }
read -r server
case "$server" in
  ghcr.io) printf '%s' '{"ServerURL":"ghcr.io","Username":"helper-user","Secret":"helper-pass-S3CRET"}';;
  https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"hub-token-S3CRET"}';;
  locked.io) echo "the keychain is locked" >&2; exit 3;;
  leaky.io) echo '{"ServerURL":"leaky.io","Username":"u","Secret":"leaked-S3CRET"}'; exit 1;;
  *) echo "credentials not found in native keychain"; exit 1;;
esac
`;

/** Installs `docker-credential-testhelper` in a temp dir and hands that dir to `fn`. */
async function withHelper(fn: (bin: string) => Promise<void>): Promise<void> {
  await withTempDir(async (bin) => {
    const helper = `${bin}/docker-credential-testhelper`;
    await Deno.writeTextFile(helper, HELPER_SCRIPT);
    await Deno.chmod(helper, 0o755);
    await fn(bin);
  });
}

Deno.test("dockerConfigCredentials() runs a real credential helper found on PATH", async () => {
  await withHelper(async (bin) => {
    await withTempDir(async (dir) => {
      const path = await writeConfig(dir, {
        auths: { "ghcr.io": { auth: btoa("file-user:file-pass") } },
        credHelpers: { "ghcr.io": "testhelper" },
        credsStore: "testhelper",
      });
      const provider = dockerConfigCredentials({
        path,
        env: envOf({ PATH: `${bin}:${Deno.env.get("PATH") ?? ""}` }),
      });
      assert.deepEqual(await provider("ghcr.io"), {
        username: "helper-user",
        password: "helper-pass-S3CRET",
      });
      assert.deepEqual(await provider("docker.io"), {
        identityToken: "hub-token-S3CRET",
      });
      assert.equal(await provider("unknown.io"), undefined);

      const locked = await rejection(provider("locked.io"));
      assert.equal(
        locked.message,
        'Cannot get credentials for locked.io from credential helper "docker-credential-testhelper": it exited with code 3: the keychain is locked',
      );
      const leaky = await rejection(provider("leaky.io"));
      assert.equal(
        leaky.message,
        'Cannot get credentials for leaky.io from credential helper "docker-credential-testhelper": it exited with code 1',
      );
      assertNoSecret(leaky, "S3CRET");
      assertNoSecret(locked, "S3CRET");
    });
  });
});

Deno.test("dockerConfigCredentials() finds a helper on the process PATH by default", async () => {
  await withHelper(async (bin) => {
    await withTempDir(async (dir) => {
      const path = await writeConfig(dir, { credsStore: "testhelper" });
      const original = Deno.env.get("PATH") ?? "";
      Deno.env.set("PATH", `${bin}:${original}`);
      try {
        assert.deepEqual(await dockerConfigCredentials({ path })("ghcr.io"), {
          username: "helper-user",
          password: "helper-pass-S3CRET",
        });
      } finally {
        Deno.env.set("PATH", original);
      }
    });
  });
});

Deno.test("dockerConfigCredentials() says when a credential helper is not installed", async () => {
  await withTempDir(async (dir) => {
    const path = await writeConfig(dir, {
      auths: { "x.io": {} },
      credsStore: "oci-test-missing-helper",
    });
    const error = await rejection(
      dockerConfigCredentials({ path, env: envOf({ PATH: dir }) })("x.io"),
    );
    assert.equal(
      error.message,
      'Cannot run credential helper "docker-credential-oci-test-missing-helper" for x.io: it is not installed or not on PATH',
    );
  });
});

function recording(
  asked: string[],
  name: string,
  answer?: Credentials,
): CredentialProvider {
  return (registry) => {
    asked.push(`${name}:${registry}`);
    return Promise.resolve(answer);
  };
}

Deno.test("chainCredentials() asks providers in order and stops at the first answer", async () => {
  const asked: string[] = [];
  const provider = chainCredentials(
    recording(asked, "a"),
    recording(asked, "b", { username: "b", password: "2" }),
    recording(asked, "c", { username: "c", password: "3" }),
  );
  assert.deepEqual(await provider("r.io"), { username: "b", password: "2" });
  assert.deepEqual(asked, ["a:r.io", "b:r.io"]);
});

Deno.test("chainCredentials() answers undefined when no provider has credentials", async () => {
  const asked: string[] = [];
  const provider = chainCredentials(
    recording(asked, "a"),
    recording(asked, "b"),
  );
  assert.equal(await provider("r.io"), undefined);
  assert.deepEqual(asked, ["a:r.io", "b:r.io"]);
  assert.equal(await chainCredentials()("r.io"), undefined);
});

Deno.test("chainCredentials() stops at a provider that fails", async () => {
  const asked: string[] = [];
  const provider = chainCredentials(
    recording(asked, "a"),
    () => Promise.reject(new TypeError("broken provider")),
    recording(asked, "c", { username: "c", password: "3" }),
  );
  await assert.rejects(provider("r.io"), /broken provider/);
  assert.deepEqual(asked, ["a:r.io"]);
});
