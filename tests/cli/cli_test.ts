// The real `oci` process against the real distribution registry.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startDistribution } from "../../peers/distribution.ts";
import { peerAvailable, requirePeer } from "../../peers/available.ts";
import { registryTest, SOCKET_BACKENDS } from "../support/registries.ts";
import { ALL_PERMISSIONS, CLI, type CliRun, runCli } from "../support/cli.ts";
import { listFiles, listFilesIfAny } from "../support/files.ts";

/** `deno run` with broad grants, then the CLI (tests/cli/permissions_test.ts narrows them). */
const RUN_CLI = ["run", ...ALL_PERMISSIONS, CLI];

type Run = CliRun;

function oci(
  args: string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<Run> {
  return runCli(args, options);
}

function ok(run: Run): Run {
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stderr}`);
  return run;
}

async function withWork(fn: (work: string) => Promise<void>): Promise<void> {
  const work = await Deno.makeTempDir({ prefix: "oci-cli-" });
  try {
    await fn(work);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

registryTest(
  "oci push, tags, inspect, pull and copy work against distribution, with --json",
  async (start) => {
    await using registry = await start();
    await withWork(async (work) => {
      await Deno.mkdir(`${work}/src/bin`, { recursive: true });
      await Deno.writeTextFile(
        `${work}/src/bin/hello`,
        "#!/bin/sh\necho hello\n",
      );
      await Deno.chmod(`${work}/src/bin/hello`, 0o755);
      const cache = ["--cache", `${work}/cache`];
      const ref = `${registry.host}/cli/app:v1`;

      const pushed = JSON.parse(
        ok(
          await oci([
            "push",
            `${work}/src`,
            ref,
            "--json",
            "--platform",
            "linux/arm64",
            "--annotation",
            "team=tools",
            ...cache,
          ]),
        ).stdout,
      );
      assert.match(pushed.digest, /^sha256:[0-9a-f]{64}$/);
      assert.equal(pushed.destination, ref);
      assert.equal(pushed.source, `${work}/src`);
      assert.match(pushed.layer.diffId, /^sha256:/);

      const tags = JSON.parse(
        ok(await oci(["tags", `${registry.host}/cli/app`, "--json"])).stdout,
      );
      assert.deepEqual(tags, {
        source: `${registry.host}/cli/app`,
        repository: "cli/app",
        tags: ["v1"],
      });
      assert.equal(
        ok(await oci(["tags", `${registry.host}/cli/app`])).stdout,
        "v1\n",
      );

      const inspected = JSON.parse(
        ok(await oci(["inspect", ref, "--platform", "linux/arm64", "--json"]))
          .stdout,
      );
      assert.equal(inspected.digest, pushed.digest);
      const manifest = inspected.manifest;
      assert.equal(manifest.layers[0].digest, pushed.layer.digest);
      assert.equal(manifest.annotations.team, "tools");
      const config = JSON.parse(
        ok(await oci(["inspect", ref, "--platform", "linux/arm64", "--config"]))
          .stdout,
      );
      assert.deepEqual(config.rootfs.diff_ids, [pushed.layer.diffId]);
      assert.equal(config.architecture, "arm64");

      const pulled = JSON.parse(
        ok(
          await oci([
            "pull",
            ref,
            `${work}/out`,
            "--platform",
            "linux/arm64",
            "--json",
            ...cache,
          ]),
        ).stdout,
      );
      assert.equal(pulled.digest, pushed.digest);
      assert.deepEqual(pulled.platform, {
        os: "linux",
        architecture: "arm64",
        variant: "v8",
      });
      assert.equal(
        await Deno.readTextFile(`${work}/out/bin/hello`),
        "#!/bin/sh\necho hello\n",
      );
      assert.equal(
        (await Deno.stat(`${work}/out/bin/hello`)).mode! & 0o777,
        0o755,
      );

      const copied = JSON.parse(
        ok(
          await oci([
            "copy",
            ref,
            `${registry.host}/mirror/app:v1`,
            "--all",
            "--json",
          ]),
        ).stdout,
      );
      assert.equal(copied.digest, pushed.digest);
      // Within one registry: mounted, no bytes sent.
      assert.deepEqual(
        [copied.copied, copied.mounted, copied.existing],
        [0, 2, 0],
      );
      const toLayout = JSON.parse(
        ok(
          await oci([
            "copy",
            ref,
            `layout:${work}/layout:v1`,
            "--all",
            "--json",
          ]),
        ).stdout,
      );
      assert.equal(toLayout.digest, pushed.digest);
      const fromLayout = JSON.parse(
        ok(await oci(["inspect", `layout:${work}/layout:v1`, "--json"])).stdout,
      );
      assert.equal(fromLayout.manifest.layers[0].digest, pushed.layer.digest);
      assert.equal(fromLayout.layers[0].digest, pushed.layer.digest);
    });
  },
  { backends: SOCKET_BACKENDS },
);

registryTest(
  "oci --verbose logs one line per request; --quiet prints only the result",
  async (start) => {
    await using registry = await start();
    await withWork(async (work) => {
      await Deno.writeTextFile(`${work}/file.txt`, "x");
      const push = ok(
        await oci([
          "push",
          `${work}/file.txt`,
          `${registry.host}/v/app:1`,
          "--verbose",
          "--cache",
          `${work}/c`,
        ]),
      );
      const lines = push.stderr.split("\n").filter((l) =>
        /^(GET|HEAD|POST|PUT) http/.test(l)
      );
      assert.ok(lines.length >= 5, push.stderr);
      for (const line of lines) {
        assert.match(
          line,
          /^\w+ http:\/\/127\.0\.0\.1:\d+\/v2\/\S* \d{3} \d+ms$/,
        );
      }
      const quiet = ok(
        await oci([
          "push",
          `${work}/file.txt`,
          `${registry.host}/v/app:2`,
          "-q",
          "--cache",
          `${work}/c`,
        ]),
      );
      assert.equal(quiet.stderr, "");
      assert.match(quiet.stdout, /^sha256:[0-9a-f]{64}\n$/);
    });
  },
  { backends: SOCKET_BACKENDS },
);

registryTest(
  "oci exits 1 with the registry, operation and error code on an operational error",
  async (start) => {
    await using registry = await start();
    const run = await oci(["inspect", `${registry.host}/nothing/here:v1`]);
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /^oci: GET http:\/\/127\.0\.0\.1:\d+\/v2\/nothing\/here\/manifests\/v1: 404 Not Found: .*(MANIFEST_UNKNOWN|NAME_UNKNOWN)/,
    );
  },
  { backends: SOCKET_BACKENDS },
);

Deno.test({
  name: "oci --username with --password-stdin logs in to an htpasswd registry",
  ...requirePeer("docker-registry", "htpasswd"),
  async fn() {
    await using registry = await startDistribution({
      htpasswd: { ci: "s3cret-pass" },
    });
    await withWork(async (work) => {
      await Deno.writeTextFile(`${work}/f`, "f");
      const args = [
        "push",
        `${work}/f`,
        `${registry.host}/auth/app:v1`,
        "--cache",
        `${work}/c`,
        "--verbose",
      ];
      const denied = await oci(args, { env: { HOME: work } });
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /none were found/);
      const pushed = ok(
        await oci([...args, "--username", "ci", "--password-stdin"], {
          stdin: "s3cret-pass\n",
          env: { HOME: work },
        }),
      );
      assert.ok(
        !pushed.stderr.includes("s3cret-pass"),
        "the password never appears in logs",
      );
      assert.ok(!pushed.stderr.toLowerCase().includes("authorization"));
    });
  },
});

const USAGE: [string[], RegExp][] = [
  [[], /Usage: oci <command>/],
  [["frobnicate"], /unknown command "frobnicate"/],
  [["push", "only-one"], /push takes 2 arguments, got 1/],
  [["push", "a", "b", "--bogus"], /unknown flag --bogus/],
  [["pull", "Not A Ref", "dir"], /Cannot parse image reference "Not A Ref"/],
  [
    ["copy", "a:1", "b:1", "--all", "--platform", "linux/amd64"],
    /use --platform or --all, not both/,
  ],
  [["inspect", "x:1", "--platform", "linux"], /Cannot parse platform "linux"/],
  [["tags", "layout:/definitely/not/here"], /is not an OCI image layout/],
  [
    ["pull", "layout:/definitely/not/here:v1", "dir"],
    /is not an OCI image layout/,
  ],
  [
    ["push", "/definitely/not/here", "127.0.0.1:1/a:b"],
    /"\/definitely\/not\/here" does not exist/,
  ],
  [
    ["push", "a", "127.0.0.1:1/a:b", "--annotation", "novalue"],
    /--annotation needs KEY=VALUE/,
  ],
  [
    ["tags", "127.0.0.1:1/a", "--concurrency", "0"],
    /--concurrency must be a positive integer/,
  ],
  [
    ["tags", "127.0.0.1:1/a", "--username", "u"],
    /--username and --password-stdin go together/,
  ],
  [
    ["inspect", "127.0.0.1:1/a:b", "--timeout", "soon"],
    /--timeout must be a number of seconds/,
  ],
];

for (const [args, message] of USAGE) {
  Deno.test(`oci ${args.join(" ") || "(nothing)"} is a usage error: exit 2 and a one-line hint`, async () => {
    const run = await oci(args);
    assert.equal(run.code, 2, run.stderr);
    if (args.length === 0) {
      assert.match(run.stdout, message);
      return;
    }
    const lines = run.stderr.trim().split("\n");
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0], message);
    assert.match(lines[0], /oci (--help|\w+ --help)/);
  });
}

Deno.test("oci --help and oci <command> --help show usage and examples", async () => {
  const top = ok(await oci(["--help"]));
  for (const name of ["push", "pull", "copy", "inspect", "tags"]) {
    assert.match(top.stdout, new RegExp(`\\n  ${name} +\\S`));
    const help = ok(await oci([name, "--help"]));
    assert.match(help.stdout, new RegExp(`Usage: oci ${name} `));
    assert.match(help.stdout, /Examples:\n {2}oci /);
    assert.match(help.stdout, /--json/);
  }
});

/** Every file under a directory, relative. */
registryTest(
  "oci pull interrupted by Ctrl-C leaves no partial file, and a rerun completes",
  async (start) => {
    await using registry = await start();
    await withWork(async (work) => {
      // A 256 MiB layer of incompressible bytes, pushed with the library.
      const { createLayer } = await import("../../src/layer/create_layer.ts");
      const { openLayout } = await import("../../src/store/layout_store.ts");
      const { pushImage } = await import("../../src/image/push.ts");
      const { parseReference } = await import("../../src/oci/reference.ts");
      const { createOpener } = await import("../../src/transport/opener.ts");
      await Deno.mkdir(`${work}/src`);
      const file = await Deno.open(`${work}/src/random.bin`, {
        write: true,
        create: true,
      });
      const chunk = new Uint8Array(65536);
      for (let i = 0; i < 4096; i++) {
        await file.write(crypto.getRandomValues(chunk));
      }
      file.close();
      const layer = await createLayer(
        `${work}/src`,
        await openLayout(`${work}/push-stage`),
      );
      const ref = parseReference(`${registry.host}/big/app:v1`);
      await pushImage(ref, {
        layers: [layer],
        transport: createOpener({
          credentials: () => Promise.resolve(undefined),
        }),
      });

      const args = [
        ...RUN_CLI,
        "pull",
        `${registry.host}/big/app:v1`,
        `${work}/out`,
        "--cache",
        `${work}/cache`,
      ];
      const child = new Deno.Command(Deno.execPath(), {
        args,
        stdout: "null",
        stderr: "piped",
      }).spawn();
      await new Promise((resolve) => setTimeout(resolve, 700));
      child.kill("SIGINT");
      const { code, stderr } = await child.output();
      const message = new TextDecoder().decode(stderr);
      assert.ok(code === 130 || code === 0, `exit ${code}: ${message}`);
      if (code === 130) {
        assert.match(message, /interrupted; nothing partial was kept/);
      } else {console.warn(
          "the pull finished before Ctrl-C arrived; checking its files anyway",
        );}
      const leftovers = [
        ...await listFiles(`${work}/cache`),
        ...await listFilesIfAny(`${work}/out`),
      ]
        .filter((p) => p.includes(".tmp"));
      assert.deepEqual(leftovers, []);
      const { openLayout: open } = await import(
        "../../src/store/layout_store.ts"
      );
      const cache = await open(`${work}/cache`);
      for (const path of await listFiles(`${work}/cache/blobs/sha256`)) {
        assert.ok(
          await cache.hasBlob(`sha256:${path}`, { verify: true }),
          `${path} is whole`,
        );
      }
      ok(
        await oci([
          "pull",
          `${registry.host}/big/app:v1`,
          `${work}/out`,
          "--cache",
          `${work}/cache`,
          "-q",
        ]),
      );
      assert.equal((await Deno.stat(`${work}/out/random.bin`)).size, 256 << 20);
    });
  },
  { backends: ["distribution"] },
);

Deno.test({
  name:
    "oci serve --root serves until Ctrl-C, and umoci unpacks what it stored",
  ...requirePeer("umoci"),
  async fn() {
    await withWork(async (work) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          ...RUN_CLI,
          "serve",
          "--port",
          "0",
          "--root",
          `${work}/root`,
          "--json",
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      let text = "";
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      const { url, host } = JSON.parse(text.split("\n")[0]);
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      await Deno.mkdir(`${work}/src/bin`, { recursive: true });
      await Deno.writeTextFile(`${work}/src/bin/tool`, "tool\n");
      ok(
        await oci([
          "push",
          `${work}/src`,
          `${host}/team/app:v1`,
          "--cache",
          `${work}/c`,
          "-q",
        ]),
      );
      const unpack = await new Deno.Command("umoci", {
        args: [
          "unpack",
          "--rootless",
          "--image",
          `${work}/root/team/app:v1`,
          `${work}/bundle`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(unpack.code, 0, new TextDecoder().decode(unpack.stderr));
      assert.equal(
        await Deno.readTextFile(`${work}/bundle/rootfs/bin/tool`),
        "tool\n",
      );
      child.kill("SIGINT");
      await reader.cancel();
      const status = await child.status;
      await child.stderr.cancel();
      assert.equal(status.code, 0);
    });
  },
});

Deno.test("deno task demo runs the main job on the embedded registry and verifies the files", async () => {
  const demo = fileURLToPath(
    new URL("../../examples/demo.ts", import.meta.url),
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      demo,
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(stdout, /^Embedded registry +http:\/\/127\.0\.0\.1:\d+/);
  assert.match(stdout, /Pushed .* for linux\/amd64, linux\/arm64/);
  assert.match(
    stdout,
    /Copied to .*: 5 blobs mounted with 5 POSTs, no blob bytes sent/,
  );
  assert.match(stdout, /Verified +5 files, modes and links identical/);
  assert.match(stdout, /Requests +\d+ \(/);
});

Deno.test("oci --verbose against a Bearer registry never prints the password or a token", async () => {
  const { serveRegistry } = await import("../../src/server/serve.ts");
  await using registry = await serveRegistry({
    auth: { users: { ci: "{PLAIN}pass-SECRET" }, token: {} },
  });
  await withWork(async (work) => {
    await Deno.writeTextFile(`${work}/f`, "f");
    const run = ok(
      await oci(
        [
          "push",
          `${work}/f`,
          `${registry.host}/secret/app:v1`,
          "--cache",
          `${work}/c`,
          "--verbose",
          "--username",
          "ci",
          "--password-stdin",
        ],
        { stdin: "pass-SECRET\n", env: { HOME: work } },
      ),
    );
    const output = run.stdout + run.stderr;
    assert.match(
      run.stderr,
      /^GET http:\/\/127\.0\.0\.1:\d+\/token\?/m,
      "token requests are logged",
    );
    assert.ok(!output.includes("SECRET"), "no password");
    assert.ok(!output.includes("eyJ"), "no token");
    assert.ok(
      !/authorization|bearer /i.test(output),
      "no Authorization header",
    );
  });
});

Deno.test("oci push DIR layout:OUT:TAG, oci tags layout:OUT and oci pull layout:OUT:TAG DIR work; skopeo and umoci read what push wrote", async () => {
  await withWork(async (work) => {
    await Deno.mkdir(`${work}/src/bin`, { recursive: true });
    await Deno.writeTextFile(`${work}/src/bin/tool`, "tool\n");
    const cache = ["--cache", `${work}/cache`];
    const pushed = JSON.parse(
      ok(
        await oci([
          "push",
          `${work}/src`,
          `layout:${work}/out:v1`,
          "--platform",
          "linux/amd64",
          "--json",
          ...cache,
        ]),
      ).stdout,
    );
    assert.equal(pushed.destination, `layout:${work}/out:v1`);
    assert.match(pushed.digest, /^sha256:[0-9a-f]{64}$/);
    ok(
      await oci([
        "push",
        `${work}/src`,
        `layout:${work}/out:v2`,
        "--platform",
        "linux/amd64",
        "-q",
        ...cache,
      ]),
    );
    const tags = JSON.parse(
      ok(await oci(["tags", `layout:${work}/out`, "--json"])).stdout,
    );
    assert.deepEqual(tags.tags, ["v1", "v2"]);
    const pulled = JSON.parse(
      ok(
        await oci([
          "pull",
          `layout:${work}/out:v1`,
          `${work}/rootfs`,
          "--platform",
          "linux/amd64",
          "--json",
          "--cache",
          `${work}/pull-cache`,
        ]),
      ).stdout,
    );
    assert.equal(pulled.digest, pushed.digest);
    assert.equal(await Deno.readTextFile(`${work}/rootfs/bin/tool`), "tool\n");
    // Reading a layout that is not there is refused and creates nothing.
    const missing = await oci(["tags", `layout:${work}/nothing`]);
    assert.equal(missing.code, 2, missing.stderr);
    await assert.rejects(Deno.stat(`${work}/nothing`), Deno.errors.NotFound);

    if (peerAvailable("skopeo")) {
      const out = await new Deno.Command("skopeo", {
        args: ["inspect", "--raw", `oci:${work}/out:v1`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const raw = out.stdout;
      const digest = `sha256:${
        Array.from(
          new Uint8Array(await crypto.subtle.digest("SHA-256", raw)),
          (b) => b.toString(16).padStart(2, "0"),
        ).join("")
      }`;
      assert.equal(digest, pushed.digest, "skopeo reads the manifest we wrote");
    }
    if (peerAvailable("umoci")) {
      const unpack = await new Deno.Command("umoci", {
        args: [
          "unpack",
          "--rootless",
          "--image",
          `${work}/out:v1`,
          `${work}/bundle`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(unpack.code, 0, new TextDecoder().decode(unpack.stderr));
      assert.equal(
        await Deno.readTextFile(`${work}/bundle/rootfs/bin/tool`),
        "tool\n",
      );
    }
  });
});
