// The CLI under the least Deno permissions that do the job: network to the one registry, read
// and write of the cache and the target directories only, the named environment variables of
// the `oci` task, and no subprocess unless a credential helper is configured.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { serveRegistry } from "../../src/server/serve.ts";
import { type CliRun, runCli } from "../support/cli.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The `--allow-env=` list of the `oci` task in deno.json: the variables the CLI reads. */
async function taskEnvFlag(): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const command: string = config.tasks.oci.command ?? config.tasks.oci;
  const flag = command.split(/\s+/).find((part) =>
    part.startsWith("--allow-env=")
  );
  assert.ok(
    flag,
    `the oci task grants the environment variable by variable: ${command}`,
  );
  assert.ok(
    !/--allow-run/.test(command),
    `the oci task runs no subprocess: ${command}`,
  );
  assert.ok(!/(^|\s)-A(\s|$)|--allow-all/.test(command), command);
  return flag;
}

function oci(
  permissions: string[],
  args: string[],
  env: Record<string, string> = {},
): Promise<CliRun> {
  return runCli(args, { permissions, env });
}

Deno.test("the CLI pushes, lists, copies and pulls with least permissions", async () => {
  const work = await Deno.makeTempDir({ prefix: "oci-permissions-" });
  await using registry = await serveRegistry({});
  const env = await taskEnvFlag();
  const net = `--allow-net=${registry.host}`;
  try {
    await Deno.mkdir(`${work}/src/sub`, { recursive: true });
    await Deno.writeTextFile(`${work}/src/sub/hello.txt`, "hello\n");
    const cache = `${work}/cache`;
    const push = await oci(
      [net, `--allow-read=${work}/src,${cache}`, `--allow-write=${cache}`, env],
      [
        "push",
        `${work}/src`,
        `${registry.host}/least/app:v1`,
        "--cache",
        cache,
      ],
      { HOME: `${work}/home` },
    );
    assert.equal(push.code, 0, push.stderr);

    const tags = await oci([net, env], ["tags", `${registry.host}/least/app`]);
    assert.equal(tags.code, 0, tags.stderr);
    assert.equal(tags.stdout.trim(), "v1");

    const copy = await oci(
      [net, env],
      [
        "copy",
        `${registry.host}/least/app:v1`,
        `${registry.host}/least/copy:v1`,
      ],
    );
    assert.equal(copy.code, 0, copy.stderr);

    const out = `${work}/out`;
    const pull = await oci(
      [
        net,
        `--allow-read=${cache},${out}`,
        `--allow-write=${cache},${out}`,
        env,
      ],
      ["pull", `${registry.host}/least/copy:v1`, out, "--cache", cache],
    );
    assert.equal(pull.code, 0, pull.stderr);
    assert.equal(await Deno.readTextFile(`${out}/sub/hello.txt`), "hello\n");

    // A directory the CLI may not write: a clear error naming it, exit 1, nothing written.
    const denied = await oci(
      [
        net,
        `--allow-read=${cache},${work}/denied`,
        `--allow-write=${cache}`,
        env,
      ],
      [
        "pull",
        `${registry.host}/least/app:v1`,
        `${work}/denied`,
        "--cache",
        cache,
      ],
    );
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /write access to ".*denied"/);
    await assert.rejects(Deno.stat(`${work}/denied`), Deno.errors.NotFound);

    // Another host than the one granted: refused by Deno, named in the error.
    const otherHost = await oci([`--allow-net=127.0.0.1:1`, env], [
      "tags",
      `${registry.host}/least/app`,
    ]);
    assert.equal(otherHost.code, 1);
    assert.match(otherHost.stderr, /net access to "127\.0\.0\.1:\d+"/);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("a credential helper runs only when --allow-run names it", async () => {
  const work = await Deno.makeTempDir({ prefix: "oci-permissions-" });
  const secrets: string[] = [];
  await using registry = await serveRegistry({
    auth: { users: { helper: "{PLAIN}s3cret-from-helper" } },
  });
  const env = await taskEnvFlag();
  try {
    // A docker config that names a credential helper, and the helper on PATH.
    await Deno.mkdir(`${work}/docker`);
    await Deno.writeTextFile(
      `${work}/docker/config.json`,
      JSON.stringify({ credHelpers: { [registry.host]: "fake" } }),
    );
    await Deno.mkdir(`${work}/bin`);
    const helper = `${work}/bin/docker-credential-fake`;
    await Deno.writeTextFile(
      helper,
      `#!/bin/sh\nread server\necho '{"ServerURL":"'$server'","Username":"helper","Secret":"s3cret-from-helper"}'\n`,
    );
    await Deno.chmod(helper, 0o755);
    secrets.push("s3cret-from-helper");
    const childEnv = {
      DOCKER_CONFIG: `${work}/docker`,
      PATH: `${work}/bin:${Deno.env.get("PATH")}`,
    };
    const read = `--allow-read=${work}/docker`;

    const refused = await oci(
      [`--allow-net=${registry.host}`, read, env],
      ["tags", `${registry.host}/private/app`],
      childEnv,
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /--allow-run=docker-credential-fake/);

    const allowed = await oci(
      [
        `--allow-net=${registry.host}`,
        read,
        `--allow-run=docker-credential-fake`,
        env,
      ],
      ["tags", `${registry.host}/private/app`, "--verbose"],
      childEnv,
    );
    // The registry is empty: 404 NAME_UNKNOWN after a successful login, not 401.
    assert.equal(allowed.code, 1, allowed.stderr);
    assert.match(allowed.stderr, /NAME_UNKNOWN/);
    assert.doesNotMatch(allowed.stderr, /UNAUTHORIZED/);
    for (const secret of secrets) {
      assert.ok(
        !allowed.stderr.includes(secret) && !refused.stderr.includes(secret),
      );
      assert.ok(!allowed.stderr.includes(btoa(`helper:${secret}`)));
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
