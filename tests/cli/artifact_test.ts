/**
 * Artifacts through the real CLI, against distribution and the embedded registry (in memory
 * and on disk): push of files with --artifact-type and several tags, skopeo reading what we
 * pushed, pull writing the files by title; refusals of unsafe titles, of a manifest that is
 * neither an image nor an artifact (spack's index.spack), and of mixed-up pushes.
 */
import assert from "node:assert/strict";
import { digestOf } from "../../src/oci/digest.ts";
import { type CliRun, runCli } from "../support/cli.ts";
import { registryTest, SOCKET_BACKENDS } from "../support/registries.ts";

function ok(run: CliRun): CliRun {
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stdout}\n${run.stderr}`);
  return run;
}

function json(run: CliRun): Record<string, unknown> {
  return JSON.parse(ok(run).stdout);
}

async function withWork(fn: (work: string) => Promise<void>): Promise<void> {
  const work = await Deno.makeTempDir({ prefix: "oci-artifact-" });
  try {
    await fn(work);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

async function skopeoRaw(ref: string): Promise<string> {
  const out = await new Deno.Command("skopeo", {
    args: ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

/** Puts blobs and a hand-made manifest through the CLI (blob put, manifest put). */
async function putManifest(
  work: string,
  repo: string,
  tag: string,
  config: { mediaType: string; bytes: string },
  layers: { mediaType: string; bytes: string; title?: string }[],
): Promise<void> {
  const blob = async (bytes: string) => {
    const path = `${work}/blob-${digestOf(bytes).slice(7, 19)}`;
    await Deno.writeTextFile(path, bytes);
    ok(await runCli(["blob", "put", repo, path]));
    return {
      digest: digestOf(bytes),
      size: new TextEncoder().encode(bytes).length,
    };
  };
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: config.mediaType, ...(await blob(config.bytes)) },
    layers: await Promise.all(layers.map(async (layer) => ({
      mediaType: layer.mediaType,
      ...(await blob(layer.bytes)),
      ...(layer.title !== undefined
        ? { annotations: { "org.opencontainers.image.title": layer.title } }
        : {}),
    }))),
  };
  await Deno.writeTextFile(`${work}/m.json`, JSON.stringify(manifest));
  ok(await runCli(["manifest", "put", `${repo}:${tag}`, `${work}/m.json`]));
}

registryTest(
  "oci push --artifact-type (files, titles, empty config, several tags), skopeo inspect --raw, oci pull writes the files",
  async (start) => {
    await using registry = await start();
    await withWork(async (work) => {
      await Deno.writeTextFile(`${work}/notes.md`, "# notes\n");
      await Deno.writeTextFile(`${work}/data.bin`, "binary");
      const repo = `${registry.host}/art/notes`;
      const pushed = json(
        await runCli([
          "push",
          `${repo}:v1,v1.0`,
          `${work}/notes.md:text/markdown`,
          `${work}/data.bin`,
          "--artifact-type",
          "application/vnd.example.notes",
          "--annotation",
          "org.example=yes",
          "--tag",
          "latest",
          "--json",
        ]),
      );
      assert.equal(pushed.artifactType, "application/vnd.example.notes");
      assert.deepEqual(pushed.tags, ["v1", "v1.0", "latest"]);
      assert.deepEqual(pushed.layers, [
        {
          digest: digestOf("# notes\n"),
          mediaType: "text/markdown",
          size: 8,
          title: "notes.md",
        },
        {
          digest: digestOf("binary"),
          mediaType: "application/octet-stream",
          size: 6,
          title: "data.bin",
        },
      ]);
      for (const tag of ["v1", "v1.0", "latest"]) {
        assert.equal(
          ok(await runCli(["digest", `${repo}:${tag}`])).stdout,
          `${pushed.digest}\n`,
        );
      }
      const raw = ok(await runCli(["manifest", "get", `${repo}:v1`])).stdout;
      assert.equal(digestOf(raw), pushed.digest);
      const manifest = JSON.parse(raw);
      assert.equal(manifest.artifactType, "application/vnd.example.notes");
      assert.deepEqual(manifest.config, {
        mediaType: "application/vnd.oci.empty.v1+json",
        digest: digestOf("{}"),
        size: 2,
      });
      assert.deepEqual(manifest.annotations, { "org.example": "yes" });
      assert.equal(await skopeoRaw(`${repo}:v1.0`), raw);

      const pulled = json(
        await runCli(["pull", `${repo}:latest`, `${work}/out`, "--json"]),
      );
      assert.equal(pulled.digest, pushed.digest);
      assert.equal(pulled.artifactType, "application/vnd.example.notes");
      assert.deepEqual(
        (pulled.files as { title: string }[]).map((f) => f.title),
        ["notes.md", "data.bin"],
      );
      assert.equal(
        await Deno.readTextFile(`${work}/out/notes.md`),
        "# notes\n",
      );
      assert.equal(await Deno.readTextFile(`${work}/out/data.bin`), "binary");
      assert.deepEqual(
        [...Deno.readDirSync(`${work}/out`)].map((e) => e.name).sort(),
        ["data.bin", "notes.md"],
        "no temporary file left",
      );

      // A config of its own, and an image push with several tags.
      await Deno.writeTextFile(`${work}/cfg.json`, '{"k":1}');
      const withConfig = json(
        await runCli([
          "push",
          `${repo}:cfg`,
          `${work}/notes.md`,
          "--artifact-type",
          "application/vnd.example.notes",
          "--config",
          `${work}/cfg.json:application/vnd.example.config+json`,
          "--json",
        ]),
      );
      assert.deepEqual(withConfig.config, {
        digest: digestOf('{"k":1}'),
        mediaType: "application/vnd.example.config+json",
        size: 7,
      });
      await Deno.mkdir(`${work}/src`);
      await Deno.writeTextFile(`${work}/src/a.txt`, "a\n");
      const image = json(
        await runCli([
          "push",
          `${work}/src`,
          `${registry.host}/art/app:v2,stable`,
          "--json",
          "--cache",
          `${work}/cache`,
        ]),
      );
      assert.deepEqual(image.tags, ["v2", "stable"]);
      assert.equal(
        ok(await runCli(["digest", `${registry.host}/art/app:stable`])).stdout,
        `${image.digest}\n`,
      );
    });
  },
  { backends: SOCKET_BACKENDS, peers: ["skopeo"] },
);

registryTest(
  "oci pull refuses unsafe titles and a manifest that is neither an image nor an artifact; push refuses mixed-up arguments",
  async (start) => {
    await using registry = await start();
    await withWork(async (work) => {
      const repo = `${registry.host}/art/bad`;
      const empty = {
        mediaType: "application/vnd.oci.empty.v1+json",
        bytes: "{}",
      };
      for (
        const [tag, title, reason] of [
          ["up", "../escaped", /has a \.\. component/],
          ["abs", "/tmp/escaped", /is an absolute path/],
          ["link", "link/inside", /its parent "link" is a symlink/],
        ] as const
      ) {
        await putManifest(work, repo, tag, empty, [
          { mediaType: "text/plain", bytes: `bytes of ${tag}`, title },
        ]);
        const target = `${work}/out-${tag}`;
        await Deno.mkdir(target);
        await Deno.mkdir(`${work}/elsewhere`, { recursive: true });
        await Deno.symlink(`${work}/elsewhere`, `${target}/link`);
        const run = await runCli(["pull", `${repo}:${tag}`, target]);
        assert.equal(run.code, 1, run.stderr);
        assert.match(run.stderr, reason);
        assert.deepEqual([...Deno.readDirSync(`${work}/elsewhere`)], []);
        assert.ok(!(await Deno.stat(`${work}/escaped`).catch(() => undefined)));
      }

      // spack's index.spack: JSON labelled as a tar+gzip layer, a {} image config.
      await putManifest(
        work,
        repo,
        "index.spack",
        { mediaType: "application/vnd.oci.image.config.v1+json", bytes: "{}" },
        [{
          mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
          bytes: '{"database": {}}',
        }],
      );
      const spack = await runCli([
        "pull",
        `${repo}:index.spack`,
        `${work}/spack`,
        "--json",
        "--cache",
        `${work}/cache`,
      ]);
      assert.equal(spack.code, 1);
      const message = JSON.parse(spack.stdout).error.message as string;
      assert.match(message, /neither an image nor an artifact/);
      assert.match(message, /has no rootfs\.diff_ids/);
      assert.match(message, /oci blob get/);
      assert.doesNotMatch(message, /diff_ids$/);
      // Untitled layers under the empty config: neither too.
      await putManifest(work, repo, "untitled", empty, [
        { mediaType: "application/octet-stream", bytes: "raw" },
      ]);
      const untitled = await runCli(["pull", `${repo}:untitled`, `${work}/u`]);
      assert.equal(untitled.code, 1);
      assert.match(untitled.stderr, /layers have no titles.*oci blob get/s);

      await Deno.writeTextFile(`${work}/f.txt`, "f");
      const refusals: [string[], RegExp][] = [
        [
          ["push", `${repo}:x`, `${work}/missing`, "--artifact-type", "a/b"],
          /is not a file/,
        ],
        [
          [
            "push",
            `${repo}:x`,
            `${work}/f.txt`,
            "--artifact-type",
            "a/b",
            "--base",
            "alpine",
          ],
          /--base is for an image push/,
        ],
        [
          ["push", `${work}/f.txt`, `${repo}:x`, "extra"],
          /push takes 2 arguments, got 3/,
        ],
        [
          ["push", `${work}/f.txt`, `${repo}:x`, "--config", `${work}/f.txt`],
          /--config goes with --artifact-type/,
        ],
        [["push", `${work}/f.txt`, `${repo}:x,-bad`], /"-bad" is not a tag/],
        [[
          "push",
          `${repo}:x`,
          `${work}/f.txt`,
          "--artifact-type",
          "a/b",
          "--tag",
          "no good",
        ], /"no good" is not a tag/],
      ];
      for (const [args, message] of refusals) {
        const run = await runCli(args);
        assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
        assert.match(run.stderr, message);
      }
    });
  },
  { backends: SOCKET_BACKENDS },
);
