import assert from "node:assert/strict";
import {
  chainCredentials,
  dockerConfigCredentials,
  environmentCredentials,
  normalizeRegistry,
  staticCredentials,
} from "../src/transport/credentials.ts";

async function withConfig(
  config: unknown,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/config.json`,
      typeof config === "string" ? config : JSON.stringify(config),
    );
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("normalizeRegistry() makes config keys and registry names comparable", () => {
  const cases: [string, string][] = [
    ["https://index.docker.io/v1/", "docker.io"],
    ["index.docker.io", "docker.io"],
    ["registry-1.docker.io", "docker.io"],
    ["docker.io", "docker.io"],
    ["https://ghcr.io", "ghcr.io"],
    ["http://127.0.0.1:5000/", "127.0.0.1:5000"],
    ["Quay.IO", "quay.io"],
  ];
  for (const [input, expected] of cases) {
    assert.equal(normalizeRegistry(input), expected, input);
  }
});

Deno.test("staticCredentials() answers for one registry or all", async () => {
  const all = staticCredentials({ username: "u", password: "p" });
  assert.deepEqual(await all("anything.io"), { username: "u", password: "p" });
  const some = staticCredentials({
    "https://index.docker.io/v1/": { identityToken: "idt" },
  });
  assert.deepEqual(await some("docker.io"), { identityToken: "idt" });
  assert.equal(await some("ghcr.io"), undefined);
});

Deno.test("environmentCredentials() reads OCI_USERNAME/OCI_PASSWORD, scoped by OCI_REGISTRY", async () => {
  const env: Record<string, string> = { OCI_USERNAME: "u", OCI_PASSWORD: "p" };
  const provider = environmentCredentials({ env: (name) => env[name] });
  assert.deepEqual(await provider("ghcr.io"), { username: "u", password: "p" });
  env.OCI_REGISTRY = "https://index.docker.io/v1/";
  assert.deepEqual(await provider("docker.io"), {
    username: "u",
    password: "p",
  });
  assert.equal(await provider("ghcr.io"), undefined);
  delete env.OCI_PASSWORD;
  assert.equal(await provider("docker.io"), undefined);
});

Deno.test("environmentCredentials() reads the real environment", async () => {
  Deno.env.set("OCI_USERNAME", "envuser");
  Deno.env.set("OCI_PASSWORD", "envpass");
  try {
    assert.deepEqual(await environmentCredentials()("ghcr.io"), {
      username: "envuser",
      password: "envpass",
    });
  } finally {
    Deno.env.delete("OCI_USERNAME");
    Deno.env.delete("OCI_PASSWORD");
  }
});

Deno.test("dockerConfigCredentials() reads every auths entry form", async () => {
  await withConfig({
    auths: {
      "https://index.docker.io/v1/": { auth: btoa("hubuser:pa:ss") },
      "ghcr.io": { username: "gh", password: "ghp" },
      "https://quay.io/v2/": { identitytoken: "refresh-me" },
      "empty.io": {},
    },
  }, async (dir) => {
    const provider = dockerConfigCredentials({ path: `${dir}/config.json` });
    assert.deepEqual(await provider("docker.io"), {
      username: "hubuser",
      password: "pa:ss",
    });
    assert.deepEqual(await provider("ghcr.io"), {
      username: "gh",
      password: "ghp",
    });
    assert.deepEqual(await provider("quay.io"), {
      identityToken: "refresh-me",
    });
    assert.equal(await provider("empty.io"), undefined);
    assert.equal(await provider("other.io"), undefined);
  });
});

Deno.test("dockerConfigCredentials() finds the file through DOCKER_CONFIG, then HOME", async () => {
  await withConfig(
    { auths: { "a.io": { auth: btoa("x:y") } } },
    async (dir) => {
      const viaDockerConfig = dockerConfigCredentials({
        env: (name) =>
          ({ DOCKER_CONFIG: dir, HOME: "/nonexistent" } as Record<
            string,
            string
          >)[name],
      });
      assert.deepEqual(await viaDockerConfig("a.io"), {
        username: "x",
        password: "y",
      });
      await Deno.mkdir(`${dir}/home/.docker`, { recursive: true });
      await Deno.copyFile(
        `${dir}/config.json`,
        `${dir}/home/.docker/config.json`,
      );
      const viaHome = dockerConfigCredentials({
        env: (name) =>
          ({ HOME: `${dir}/home` } as Record<string, string>)[name],
      });
      assert.deepEqual(await viaHome("a.io"), { username: "x", password: "y" });
      const missing = dockerConfigCredentials({
        env: (name) =>
          ({ HOME: `${dir}/nowhere` } as Record<string, string>)[name],
      });
      assert.equal(await missing("a.io"), undefined);
    },
  );
});

Deno.test("dockerConfigCredentials() names the file of invalid JSON and not its content", async () => {
  await withConfig(
    '{"auths": {"a.io": {"auth": "c2VjcmV0OnNlY3JldA=="}',
    async (dir) => {
      const provider = dockerConfigCredentials({ path: `${dir}/config.json` });
      await assert.rejects(provider("a.io"), (error: Error) => {
        assert.match(error.message, /config\.json: it is not valid JSON/);
        assert.ok(!error.message.includes("c2VjcmV0"));
        return true;
      });
    },
  );
  await withConfig(
    { auths: { "a.io": { auth: btoa("no-colon-SECRET") } } },
    async (dir) => {
      await assert.rejects(
        dockerConfigCredentials({ path: `${dir}/config.json` })("a.io"),
        (error: Error) => {
          assert.match(error.message, /not "username:password"/);
          assert.ok(!error.message.includes("SECRET"));
          return true;
        },
      );
    },
  );
});

Deno.test("dockerConfigCredentials() runs real credential helpers: credHelpers before auths before credsStore", async () => {
  const bin = await Deno.makeTempDir();
  const script = (body: string) => `#!/bin/sh\nread server\n${body}\n`;
  await Deno.writeTextFile(
    `${bin}/docker-credential-testhelper`,
    script(`case "$server" in
  ghcr.io) echo '{"ServerURL":"ghcr.io","Username":"helper-user","Secret":"helper-pass"}';;
  https://index.docker.io/v1/) echo '{"ServerURL":"x","Username":"<token>","Secret":"identity"}';;
  *) echo "credentials not found in native keychain"; exit 1;;
esac`),
  );
  await Deno.writeTextFile(
    `${bin}/docker-credential-broken`,
    script(`echo "keychain locked" >&2; exit 3`),
  );
  await Deno.chmod(`${bin}/docker-credential-testhelper`, 0o755);
  await Deno.chmod(`${bin}/docker-credential-broken`, 0o755);
  const path = Deno.env.get("PATH") ?? "";
  Deno.env.set("PATH", `${bin}:${path}`);
  try {
    await withConfig({
      auths: {
        "ghcr.io": { auth: btoa("file-user:file-pass") },
        "plain.io": { auth: btoa("p:q") },
      },
      credHelpers: { "ghcr.io": "testhelper", "broken.io": "broken" },
      credsStore: "testhelper",
    }, async (dir) => {
      const provider = dockerConfigCredentials({ path: `${dir}/config.json` });
      assert.deepEqual(await provider("ghcr.io"), {
        username: "helper-user",
        password: "helper-pass",
      });
      assert.deepEqual(await provider("plain.io"), {
        username: "p",
        password: "q",
      });
      assert.deepEqual(await provider("docker.io"), {
        identityToken: "identity",
      });
      assert.equal(await provider("unknown.io"), undefined);
      await assert.rejects(
        provider("broken.io"),
        /docker-credential-broken failed for broken.io with exit code 3: keychain locked/,
      );
    });
    await withConfig({ credsStore: "missing-helper" }, async (dir) => {
      await assert.rejects(
        dockerConfigCredentials({ path: `${dir}/config.json` })("x.io"),
        /Cannot run credential helper docker-credential-missing-helper/,
      );
    });
  } finally {
    Deno.env.set("PATH", path);
    await Deno.remove(bin, { recursive: true });
  }
});

Deno.test("chainCredentials() asks providers in order", async () => {
  const asked: string[] = [];
  const tracking =
    (name: string, answer?: { username: string; password: string }) =>
    (registry: string) => {
      asked.push(`${name}:${registry}`);
      return Promise.resolve(answer);
    };
  const provider = chainCredentials(
    tracking("a"),
    tracking("b", { username: "b", password: "2" }),
    tracking("c"),
  );
  assert.deepEqual(await provider("r.io"), { username: "b", password: "2" });
  assert.deepEqual(asked, ["a:r.io", "b:r.io"]);
});
