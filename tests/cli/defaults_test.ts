// The CLI's safe defaults, through the real CLI against the embedded registry: copy keeps an
// index whole, inspect --raw is what was served, read-only commands write nothing, pull refuses
// another platform's image, uppercase repositories are lowercased aloud, and commands without
// a stage read no cache variable (no permission prompt).
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { serveRegistry } from "../../src/server/serve.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { formatPlatform, hostPlatform } from "../../src/oci/platform.ts";
import { makeImage, pushTestIndex } from "../support/images.ts";
import { CLI, type CliRun, runCli } from "../support/cli.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

function ok(run: CliRun): CliRun {
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stderr}`);
  return run;
}

async function withWork(fn: (work: string) => Promise<void>): Promise<void> {
  const work = await Deno.makeTempDir({ prefix: "oci-defaults-" });
  try {
    await fn(work);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

const AMD64 = { os: "linux", architecture: "amd64" };
const ARM64 = { os: "linux", architecture: "arm64", variant: "v8" };

/** Every path under `dir` with its size and modification time. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (path: string) => {
    for await (const entry of Deno.readDir(path)) {
      const full = `${path}/${entry.name}`;
      const info = await Deno.lstat(full);
      out.push(`${full} ${info.size} ${info.mtime?.getTime()}`);
      if (entry.isDirectory) await walk(full);
    }
  };
  await walk(dir);
  return out.sort();
}

Deno.test("oci copy of an index copies the whole index and keeps its digest; --platform copies 1 of N and says so", async () => {
  await using registry = await serveRegistry({});
  await withWork(async (work) => {
    const ref = `${registry.host}/def/multi:v1`;
    const { descriptor, manifests } = await pushTestIndex(parseReference(ref), [
      makeImage(AMD64, [1000, 2000], 1),
      makeImage(ARM64, [3000], 2),
    ]);
    const toRegistry = ok(
      await runCli(["copy", ref, `${registry.host}/def/mirror:v1`]),
    );
    assert.equal(toRegistry.stdout.trim(), descriptor.digest);
    assert.match(
      toRegistry.stderr,
      /with 2 platforms \(linux\/amd64, linux\/arm64\/v8\)/,
    );
    const toLayout = ok(await runCli(["copy", ref, `layout:${work}/l:v1`]));
    assert.equal(toLayout.stdout.trim(), descriptor.digest);
    // Both platforms are readable at the destination.
    for (const platform of ["linux/amd64", "linux/arm64"]) {
      ok(
        await runCli([
          "inspect",
          `layout:${work}/l:v1`,
          "--platform",
          platform,
          "--json",
        ]),
      );
    }
    const narrowed = ok(
      await runCli([
        "copy",
        ref,
        `${registry.host}/def/one:v1`,
        "--platform",
        "linux/arm64",
      ]),
    );
    assert.equal(narrowed.stdout.trim(), manifests[1].digest);
    assert.match(
      narrowed.stderr,
      /Copied 1 of 2 platforms \(linux\/arm64\/v8\)/,
    );
    const missing = await runCli([
      "copy",
      ref,
      `${registry.host}/def/none:v1`,
      "--platform",
      "linux/s390x",
    ]);
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /linux\/s390x.*available: linux\/amd64, linux\/arm64\/v8/,
    );
  });
});

Deno.test("oci inspect --raw prints the exact bytes served: they hash to the digest", async () => {
  await using registry = await serveRegistry({});
  await withWork(async (work) => {
    const ref = `${registry.host}/def/raw:v1`;
    const { descriptor, manifests } = await pushTestIndex(parseReference(ref), [
      makeImage(AMD64, [100], 1),
      makeImage(ARM64, [200], 2),
    ]);
    ok(await runCli(["copy", ref, `layout:${work}/l:v1`, "-q"]));
    for (const source of [ref, `layout:${work}/l:v1`]) {
      const raw = await runRaw(["inspect", source, "--raw"]);
      assert.equal(digestOf(raw.stdout), descriptor.digest, source);
      assert.match(
        raw.stderr,
        new RegExp(
          `^${descriptor.digest} application/vnd\\.oci\\.image\\.index\\.v1\\+json\\n$`,
        ),
      );
      const one = await runRaw([
        "inspect",
        source,
        "--platform",
        "linux/arm64",
        "--raw",
      ]);
      assert.equal(digestOf(one.stdout), manifests[1].digest);
      const config = await runRaw([
        "inspect",
        source,
        "--platform",
        "linux/arm64",
        "--config",
        "--raw",
      ]);
      const manifest = JSON.parse(new TextDecoder().decode(one.stdout));
      assert.equal(digestOf(config.stdout), manifest.config.digest);
    }
    const both = await runCli(["inspect", ref, "--raw", "--json"]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /use --raw or --json, not both/);
  });
});

/** Runs the CLI and keeps stdout as bytes. */
async function runRaw(
  args: string[],
): Promise<{ stdout: Uint8Array; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  return { stdout: out.stdout, stderr };
}

Deno.test("oci inspect prints a summary: reference, digest, media type, platforms or layers with sizes, created", async () => {
  await using registry = await serveRegistry({});
  await withWork(async (work) => {
    const ref = `${registry.host}/def/summary:v1`;
    const { descriptor, manifests } = await pushTestIndex(parseReference(ref), [
      makeImage(AMD64, [100], 1),
      makeImage(ARM64, [2048, 300], 2),
    ]);
    const index = ok(await runCli(["inspect", ref])).stdout;
    assert.match(index, new RegExp(`^Reference: +${ref}$`, "m"));
    assert.match(index, new RegExp(`^Digest: +${descriptor.digest}$`, "m"));
    assert.match(
      index,
      /^Media type: +application\/vnd\.oci\.image\.index\.v1\+json$/m,
    );
    assert.match(index, /^Platforms: +2$/m);
    assert.match(
      index,
      new RegExp(`^  linux/arm64/v8 +${manifests[1].digest} `, "m"),
    );
    const image =
      ok(await runCli(["inspect", ref, "--platform", "linux/arm64"]))
        .stdout;
    assert.match(image, new RegExp(`^Index: +${descriptor.digest}`, "m"));
    assert.match(image, new RegExp(`^Digest: +${manifests[1].digest}$`, "m"));
    assert.match(image, /^Layers: +2 \(2\.3 KiB\)$/m);
    assert.match(image, /^ {2}sha256:[0-9a-f]{64} +2\.0 KiB +application\//m);
    assert.ok(!image.trimStart().startsWith("{"), "not JSON");

    // An image pushed by the CLI has a platform and a created time.
    await Deno.mkdir(`${work}/src`);
    await Deno.writeTextFile(`${work}/src/f`, "f");
    ok(
      await runCli([
        "push",
        `${work}/src`,
        `${registry.host}/def/pushed:v1`,
        "--created",
        "2024-05-01T12:00:00Z",
        "--cache",
        `${work}/c`,
        "-q",
      ]),
    );
    const pushed =
      ok(await runCli(["inspect", `${registry.host}/def/pushed:v1`]))
        .stdout;
    assert.match(
      pushed,
      new RegExp(`^Platform: +${formatPlatform(hostPlatform())}$`, "m"),
    );
    assert.match(pushed, /^Created: +2024-05-01T12:00:00Z$/m);
    assert.match(pushed, /^Layers: +1 \(\d+ B\)$/m);
  });
});

Deno.test("read-only commands write nothing: a missing layout is not created, an existing one is not touched", async () => {
  await using registry = await serveRegistry({});
  await withWork(async (work) => {
    const typo = `${work}/typo`;
    for (
      const args of [
        ["inspect", `layout:${typo}`],
        ["inspect", `layout:${typo}:v1`, "--raw"],
        ["tags", `layout:${typo}`],
        ["copy", `layout:${typo}:v1`, `${registry.host}/def/x:v1`],
        ["pull", `layout:${typo}:v1`, `${work}/out`, "--cache", `${work}/c`],
      ]
    ) {
      const run = await runCli(args);
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, /is not an OCI image layout \(no index\.json\)/);
      await assert.rejects(Deno.stat(typo), Deno.errors.NotFound, args[0]);
    }
    // A layout with content: reading it changes no file, adds none.
    const ref = `${registry.host}/def/ro:v1`;
    await pushTestIndex(parseReference(ref), [makeImage(AMD64, [100], 1)]);
    ok(await runCli(["copy", ref, `layout:${work}/ro:v1`, "-q"]));
    const before = await snapshot(`${work}/ro`);
    for (
      const args of [
        ["inspect", `layout:${work}/ro:v1`],
        [
          "inspect",
          `layout:${work}/ro:v1`,
          "--platform",
          "linux/amd64",
          "--config",
        ],
        ["inspect", `layout:${work}/ro:v1`, "--raw"],
        ["tags", `layout:${work}/ro`],
        ["copy", `layout:${work}/ro:v1`, `${registry.host}/def/back:v1`],
      ]
    ) {
      ok(await runCli(args));
    }
    assert.deepEqual(await snapshot(`${work}/ro`), before);
  });
});

Deno.test("oci pull --platform of a single-platform image of another platform fails without --force, naming both", async () => {
  await using registry = await serveRegistry({});
  await withWork(async (work) => {
    await Deno.mkdir(`${work}/src`);
    await Deno.writeTextFile(`${work}/src/f`, "f\n");
    const ref = `${registry.host}/def/single:v1`;
    ok(
      await runCli([
        "push",
        `${work}/src`,
        ref,
        "--platform",
        "linux/s390x",
        "--cache",
        `${work}/c`,
        "-q",
      ]),
    );
    const refused = await runCli([
      "pull",
      ref,
      `${work}/out`,
      "--platform",
      "linux/arm64",
      "--cache",
      `${work}/c`,
    ]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(
      refused.stderr,
      /single-platform image for linux\/s390x, not linux\/arm64\/v8 \(--platform\); add --force/,
    );
    await assert.rejects(Deno.stat(`${work}/out`), Deno.errors.NotFound);
    const forced = ok(
      await runCli([
        "pull",
        ref,
        `${work}/out`,
        "--platform",
        "linux/arm64",
        "--force",
        "--cache",
        `${work}/c`,
      ]),
    );
    assert.match(
      forced.stderr,
      /is for linux\/s390x, not linux\/arm64\/v8: pulled anyway \(--force\)/,
    );
    assert.equal(await Deno.readTextFile(`${work}/out/f`), "f\n");
    // Without --platform: pulled, with docker's warning.
    const plain = ok(
      await runCli(["pull", ref, `${work}/out2`, "--cache", `${work}/c`]),
    );
    assert.match(
      plain.stderr,
      new RegExp(
        `platform \\(linux/s390x\\) does not match the default platform \\(${
          formatPlatform(hostPlatform())
        }\\)`,
      ),
    );
    // The same platform: no warning.
    const same = ok(
      await runCli([
        "pull",
        ref,
        `${work}/out3`,
        "--platform",
        "linux/s390x",
        "--cache",
        `${work}/c`,
      ]),
    );
    assert.doesNotMatch(same.stderr, /platform/);
  });
});

Deno.test("an uppercase repository name is lowercased with a one-line warning naming the name used", async () => {
  await using registry = await serveRegistry({});
  await withWork(async (work) => {
    await Deno.writeTextFile(`${work}/f`, "f");
    const pushed = ok(
      await runCli([
        "push",
        `${work}/f`,
        `${registry.host}/Team/App:V1`,
        "--cache",
        `${work}/c`,
        "--json",
      ]),
    );
    const warnings = pushed.stderr.split("\n").filter((l) =>
      /lowercase/.test(l)
    );
    assert.deepEqual(warnings, [
      'oci: repository names are lowercase: using "team/app" for "Team/App"',
    ]);
    // The tag keeps its case.
    assert.equal(
      JSON.parse(pushed.stdout).destination,
      `${registry.host}/team/app:V1`,
    );
    const tags = ok(await runCli(["tags", `${registry.host}/team/app`]));
    assert.equal(tags.stdout, "V1\n");
    assert.doesNotMatch(
      tags.stderr,
      /lowercase/,
      "no warning for a lowercase name",
    );
  });
});

/** The `--allow-env=` list of the `oci` task in deno.json. */
async function taskEnv(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const command: string = config.tasks.oci.command ?? config.tasks.oci;
  const flag = command.split(/\s+/).find((p) => p.startsWith("--allow-env="));
  assert.ok(flag, command);
  return flag.slice("--allow-env=".length).split(",");
}

Deno.test({
  name:
    "tags and inspect read no cache variable: no permission prompt on a terminal with the task's grants minus XDG_CACHE_HOME",
  ignore: Deno.build.os === "windows",
  async fn() {
    await using registry = await serveRegistry({});
    const ref = `${registry.host}/def/env:v1`;
    await pushTestIndex(parseReference(ref), [makeImage(AMD64, [100], 1)]);
    const env = (await taskEnv()).filter((name) => name !== "XDG_CACHE_HOME");
    assert.ok(env.includes("HOME"), "the other variables stay granted");
    for (
      const args of [
        ["tags", `${registry.host}/def/env`],
        ["inspect", ref],
        ["inspect", ref, "--platform", "linux/amd64", "--config"],
      ]
    ) {
      const command = [
        Deno.execPath(),
        "run",
        `--allow-net=${registry.host}`,
        `--allow-env=${env.join(",")}`,
        CLI,
        ...args,
      ].join(" ");
      // `script` gives the CLI a terminal, where Deno would prompt for a permission not granted
      // (and wait for an answer that never comes).
      const out = await new Deno.Command("script", {
        args: ["-qec", command, "/dev/null"],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1", XDG_CACHE_HOME: "/nonexistent" },
        signal: AbortSignal.timeout(30_000),
      }).output();
      const text = new TextDecoder().decode(out.stdout) +
        new TextDecoder().decode(out.stderr);
      assert.doesNotMatch(
        text,
        /Deno requests|Allow\?/,
        `${args.join(" ")}: ${text}`,
      );
      assert.equal(out.code, 0, `${args.join(" ")}: ${text}`);
    }
  },
});
