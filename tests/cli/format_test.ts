/**
 * `oci copy --format oci` through the real CLI: a Docker v2s2 image (made by `skopeo copy
 * --format v2s2`) on distribution or the embedded registry (in memory, on disk) is written as
 * OCI (new digest, stated) to a layout that skopeo's and umoci's oci: transports read, and to
 * a registry; a wrong format or a conversion with referrers is refused.
 */
import assert from "node:assert/strict";
import { type CliRun, runCli } from "../support/cli.ts";
import { registryTest, SOCKET_BACKENDS } from "../support/registries.ts";

function ok(run: CliRun): CliRun {
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stdout}\n${run.stderr}`);
  return run;
}

async function run(command: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(command, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(
    out.code,
    0,
    `${command} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
  );
  return new TextDecoder().decode(out.stdout);
}

registryTest(
  "oci copy --format oci converts a Docker v2s2 image; skopeo and umoci read the layout",
  async (start) => {
    await using registry = await start();
    const work = await Deno.makeTempDir({ prefix: "oci-format-" });
    try {
      await Deno.mkdir(`${work}/src`);
      await Deno.writeTextFile(`${work}/src/a.txt`, "a\n");
      ok(
        await runCli([
          "push",
          `${work}/src`,
          `layout:${work}/made:v1`,
          "--cache",
          `${work}/cache`,
        ]),
      );
      const repo = `${registry.host}/fmt/app`;
      await run(
        "skopeo",
        "copy",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        `oci:${work}/made:v1`,
        `docker://${repo}:v1`,
      );
      const docker = JSON.parse(
        ok(await runCli(["manifest", "get", `${repo}:v1`])).stdout,
      );
      assert.equal(
        docker.mediaType,
        "application/vnd.docker.distribution.manifest.v2+json",
      );

      const copied = JSON.parse(
        ok(
          await runCli([
            "copy",
            `${repo}:v1`,
            `layout:${work}/out:v1`,
            "--format",
            "oci",
            "--json",
          ]),
        ).stdout,
      );
      assert.equal(
        copied.mediaType,
        "application/vnd.oci.image.manifest.v1+json",
      );
      assert.equal(copied.format, "oci");
      assert.notEqual(copied.digest, copied.sourceDigest);
      assert.deepEqual(
        (copied.converted as { source: string; digest: string }[]).map((c) => [
          c.source,
          c.digest,
        ]),
        [[copied.sourceDigest, copied.digest]],
      );
      const raw = JSON.parse(
        await run("skopeo", "inspect", "--raw", `oci:${work}/out:v1`),
      );
      assert.equal(raw.mediaType, "application/vnd.oci.image.manifest.v1+json");
      assert.equal(
        raw.config.mediaType,
        "application/vnd.oci.image.config.v1+json",
      );
      assert.equal(
        raw.layers[0].mediaType,
        "application/vnd.oci.image.layer.v1.tar+gzip",
      );
      assert.equal(raw.layers[0].digest, docker.layers[0].digest, "same blobs");
      await run(
        "umoci",
        "unpack",
        "--rootless",
        "--image",
        `${work}/out:v1`,
        `${work}/bundle`,
      );
      assert.equal(
        await Deno.readTextFile(`${work}/bundle/rootfs/a.txt`),
        "a\n",
      );

      // Into a registry, and a second copy of an OCI image changes nothing.
      const again = JSON.parse(
        ok(
          await runCli([
            "copy",
            `${repo}:v1`,
            `${repo}:oci`,
            "--format",
            "oci",
            "--json",
          ]),
        ).stdout,
      );
      assert.equal(again.digest, copied.digest);
      const noop = JSON.parse(
        ok(
          await runCli([
            "copy",
            `${repo}:oci`,
            `${repo}:oci2`,
            "--format",
            "oci",
            "--json",
          ]),
        ).stdout,
      );
      assert.equal(noop.digest, copied.digest);
      assert.deepEqual(noop.converted, []);

      for (
        const [args, message] of [
          [["--format", "docker"], /--format takes oci/],
          [["--format", "oci", "-r"], /no --referrers or --all-tags/],
        ] as const
      ) {
        const refused = await runCli([
          "copy",
          `${repo}:v1`,
          `layout:${work}/no:v1`,
          ...args,
        ]);
        assert.equal(refused.code, 2, refused.stderr);
        assert.match(refused.stderr, message);
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
  { backends: SOCKET_BACKENDS, peers: ["skopeo", "umoci"] },
);
