/**
 * The content and referrer commands through the real CLI, against distribution and the
 * embedded registry (in memory and on disk): tag, digest, manifest get/put, blob get/put,
 * attach, discover, copy --referrers, copy --all-tags, catalog, delete; success and refusal.
 */
import assert from "node:assert/strict";
import { digestOf } from "../../src/oci/digest.ts";
import { startDistribution } from "../../peers/distribution.ts";
import { requirePeer } from "../../peers/available.ts";
import { serveRegistry } from "../../src/server/serve.ts";
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
  const work = await Deno.makeTempDir({ prefix: "oci-content-" });
  try {
    await fn(work);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

registryTest(
  "oci tag, digest, manifest get/put, blob get/put",
  async (start) => {
    await using registry = await start();
    await withWork(async (work) => {
      await Deno.mkdir(`${work}/src`);
      await Deno.writeTextFile(`${work}/src/a.txt`, "a\n");
      const repo = `${registry.host}/content/app`;
      const cache = ["--cache", `${work}/cache`];
      const pushed = json(
        await runCli(["push", `${work}/src`, `${repo}:v1`, "--json", ...cache]),
      );
      const digest = pushed.digest as string;

      const tagged = json(
        await runCli(["tag", `${repo}:v1`, "v2", "latest", "--json"]),
      );
      assert.equal(tagged.digest, digest);
      assert.deepEqual(tagged.tags, ["v2", "latest"]);
      assert.equal(
        ok(await runCli(["digest", `${repo}:v2`])).stdout,
        `${digest}\n`,
      );
      const bad = await runCli(["tag", `${repo}:v1`, "-bad"]);
      assert.equal(bad.code, 2);

      const raw =
        ok(await runCli(["manifest", "get", `${repo}:latest`])).stdout;
      assert.equal(digestOf(raw), digest);
      await Deno.writeTextFile(`${work}/manifest.json`, raw);
      const put = json(
        await runCli([
          "manifest",
          "put",
          `${repo}:v3`,
          `${work}/manifest.json`,
          "--json",
        ]),
      );
      assert.equal(put.digest, digest);
      assert.equal(put.mediaType, pushed.mediaType);
      await Deno.writeTextFile(`${work}/bad.json`, '{"schemaVersion": 2}');
      const refused = await runCli([
        "manifest",
        "put",
        `${repo}:v4`,
        `${work}/bad.json`,
      ]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /Cannot put the manifest/);
      assert.equal((await runCli(["manifest", "list", repo])).code, 2);

      await Deno.writeTextFile(`${work}/data.bin`, "some blob bytes");
      const blobDigest = digestOf("some blob bytes");
      assert.equal(
        ok(await runCli(["blob", "put", repo, `${work}/data.bin`])).stdout,
        `${blobDigest}\n`,
      );
      ok(
        await runCli([
          "blob",
          "get",
          `${repo}@${blobDigest}`,
          "-o",
          `${work}/out.bin`,
        ]),
      );
      assert.equal(
        await Deno.readTextFile(`${work}/out.bin`),
        "some blob bytes",
      );
      assert.equal(
        ok(await runCli(["blob", "get", `${repo}@${blobDigest}`])).stdout,
        "some blob bytes",
      );
      const missing = await runCli([
        "blob",
        "get",
        `${repo}@${digestOf("not there")}`,
        "-o",
        `${work}/none`,
        "--json",
      ]);
      assert.equal(missing.code, 1);
      assert.match(
        JSON.parse(missing.stdout).error.message,
        /Cannot find blob/,
      );
      assert.ok(!(await Deno.stat(`${work}/none`).catch(() => undefined)));
    });
  },
  { backends: SOCKET_BACKENDS },
);

Deno.test("oci blob get and put on an OCI layout (layout:DIR@DIGEST), as on a registry", async () => {
  await withWork(async (work) => {
    await Deno.mkdir(`${work}/src`);
    await Deno.writeTextFile(`${work}/src/a.txt`, "a\n");
    const layout = `${work}/layout`;
    const pushed = json(
      await runCli(["push", `${work}/src`, `layout:${layout}:v1`, "--json"]),
    );
    await Deno.writeTextFile(`${work}/data.bin`, "layout blob bytes");
    const blobDigest = digestOf("layout blob bytes");
    assert.equal(
      ok(await runCli(["blob", "put", `layout:${layout}`, `${work}/data.bin`]))
        .stdout,
      `${blobDigest}\n`,
    );
    const got = json(
      await runCli([
        "blob",
        "get",
        `layout:${layout}@${blobDigest}`,
        "-o",
        `${work}/out.bin`,
        "--json",
      ]),
    );
    assert.equal(got.size, "layout blob bytes".length);
    assert.equal(
      await Deno.readTextFile(`${work}/out.bin`),
      "layout blob bytes",
    );
    // The manifest a push wrote, to stdout: the exact bytes of its digest.
    const manifest = ok(
      await runCli(["blob", "get", `layout:${layout}@${pushed.digest}`]),
    ).stdout;
    assert.equal(digestOf(manifest), pushed.digest);
    const missing = await runCli([
      "blob",
      "get",
      `layout:${layout}@${digestOf("not there")}`,
      "-o",
      `${work}/none`,
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Cannot find blob/);
    assert.ok(!(await Deno.stat(`${work}/none`).catch(() => undefined)));
    const byTag = await runCli(["blob", "get", `layout:${layout}:v1`]);
    assert.equal(byTag.code, 2);
    assert.match(byTag.stderr, /layout:DIR@sha256/);
    const notLayout = await runCli([
      "blob",
      "get",
      `layout:${work}/none@${blobDigest}`,
    ]);
    assert.equal(notLayout.code, 2);
    assert.match(notLayout.stderr, /not an OCI image layout/);
  });
});

registryTest(
  "oci attach, discover (tree and --json), copy --referrers, copy --all-tags, catalog",
  async (start, backend) => {
    await using registry = await start();
    await withWork(async (work) => {
      await Deno.mkdir(`${work}/src`);
      await Deno.writeTextFile(`${work}/src/a.txt`, "a\n");
      await Deno.writeTextFile(`${work}/sig.txt`, "signature");
      await Deno.writeTextFile(`${work}/sbom.json`, "{}");
      const repo = `${registry.host}/ref/app`;
      const cache = ["--cache", `${work}/cache`];
      const image = json(
        await runCli(["push", `${work}/src`, `${repo}:v1`, "--json", ...cache]),
      );
      const sig = json(
        await runCli([
          "attach",
          `${repo}:v1`,
          `${work}/sig.txt:text/plain`,
          "--artifact-type",
          "application/x.sig",
          "--json",
        ]),
      );
      assert.equal((sig.subject as { digest: string }).digest, image.digest);
      const sbom = json(
        await runCli([
          "attach",
          `${repo}@${sig.digest}`,
          `${work}/sbom.json:application/spdx+json`,
          "--artifact-type",
          "application/spdx+json",
          "--annotation",
          "kind=sbom",
          "--json",
        ]),
      );
      assert.equal(
        (await runCli(["attach", `${repo}:v1`, `${work}/sig.txt`])).code,
        2,
        "--artifact-type is required",
      );
      const text = ok(await runCli(["discover", `${repo}:v1`])).stdout;
      assert.equal(
        text,
        `${repo}@${image.digest}\n└── application/x.sig ${sig.digest}\n    └── application/spdx+json ${sbom.digest}\n`,
      );
      const found = json(await runCli(["discover", `${repo}:v1`, "--json"]));
      const referrers = found.referrers as {
        digest: string;
        referrers: { digest: string; annotations?: Record<string, string> }[];
      }[];
      assert.equal(referrers[0].digest, sig.digest);
      assert.equal(referrers[0].referrers[0].annotations?.kind, "sbom");
      const filtered = json(
        await runCli([
          "discover",
          `${repo}:v1`,
          "--artifact-type",
          "application/spdx+json",
          "--json",
        ]),
      );
      assert.deepEqual(filtered.referrers, []);
      const tags = json(await runCli(["tags", repo, "--json"]))
        .tags as string[];
      const fallback = `sha256-${(image.digest as string).slice(7)}`;
      assert.equal(tags.includes(fallback), backend === "distribution");

      const mirror = `${registry.host}/ref/mirror`;
      const copied = json(
        await runCli(["copy", `${repo}:v1`, `${mirror}:v1`, "-r", "--json"]),
      );
      assert.equal((copied.referrers as unknown[]).length, 2);
      assert.equal(
        ok(await runCli(["discover", `${mirror}:v1`])).stdout,
        text.replace(repo, mirror),
      );

      ok(await runCli(["tag", `${repo}:v1`, "v2", "v3"]));
      const all = json(
        await runCli([
          "copy",
          repo,
          `${registry.host}/ref/all`,
          "--all-tags",
          "--json",
        ]),
      );
      const statuses = (all.tags as { tag: string; status: string }[])
        .filter((t) => !t.tag.startsWith("sha256-"))
        .map((t) => `${t.tag} ${t.status}`).sort();
      assert.deepEqual(statuses, ["v1 copied", "v2 copied", "v3 copied"]);
      const again = ok(
        await runCli(["copy", repo, `${registry.host}/ref/all`, "--all-tags"]),
      ).stdout;
      assert.match(again, /^v2 skipped sha256:/m);

      const catalog = json(
        await runCli(["catalog", registry.host, "--page-size", "1", "--json"]),
      );
      assert.deepEqual(
        (catalog.repositories as string[]).filter((r) => r.startsWith("ref/")),
        ["ref/all", "ref/app", "ref/mirror"],
      );
    });
  },
  { backends: SOCKET_BACKENDS },
);

registryTest(
  "oci delete of a referrer: discover no longer lists it (the fallback index updated on distribution)",
  async (start, backend) => {
    await using registry = await start();
    await withWork(async (work) => {
      await Deno.mkdir(`${work}/src`);
      await Deno.writeTextFile(`${work}/src/a.txt`, "a\n");
      await Deno.writeTextFile(`${work}/sig.txt`, "signature");
      await Deno.writeTextFile(`${work}/sbom.json`, "{}");
      const repo = `${registry.host}/delref/app`;
      const image = json(
        await runCli([
          "push",
          `${work}/src`,
          `${repo}:v1`,
          "--json",
          "--cache",
          `${work}/cache`,
        ]),
      );
      const attach = async (file: string, type: string) =>
        json(
          await runCli([
            "attach",
            `${repo}:v1`,
            `${work}/${file}`,
            "--artifact-type",
            type,
            "--json",
          ]),
        );
      const sig = await attach("sig.txt:text/plain", "application/x.sig");
      const sbom = await attach(
        "sbom.json:application/spdx+json",
        "application/spdx+json",
      );
      ok(await runCli(["delete", `${repo}@${sig.digest}`]));
      assert.equal(
        ok(await runCli(["discover", `${repo}:v1`])).stdout,
        `${repo}@${image.digest}\n└── application/spdx+json ${sbom.digest}\n`,
      );
      ok(await runCli(["delete", `${repo}@${sbom.digest}`]));
      assert.equal(
        ok(await runCli(["discover", `${repo}:v1`])).stdout,
        `${repo}@${image.digest}\n`,
      );
      const tags = json(await runCli(["tags", repo, "--json"])).tags;
      // The fallback tag stays on distribution, holding an empty index.
      assert.deepEqual(
        tags,
        backend === "distribution"
          ? ["sha256-" + (image.digest as string).slice(7), "v1"]
          : ["v1"],
      );
    });
  },
  { backends: SOCKET_BACKENDS },
);

registryTest(
  "oci delete: a tag (where the registry allows), a manifest by digest, a blob",
  async (start, backend) => {
    await using registry = await start();
    await withWork(async (work) => {
      await Deno.mkdir(`${work}/src`);
      await Deno.writeTextFile(`${work}/src/a.txt`, "a\n");
      await Deno.writeTextFile(`${work}/data.bin`, "blob to delete");
      const repo = `${registry.host}/del/app`;
      const cache = ["--cache", `${work}/cache`];
      const pushed = json(
        await runCli(["push", `${work}/src`, `${repo}:v1`, "--json", ...cache]),
      );
      ok(await runCli(["tag", `${repo}:v1`, "v2"]));
      const untag = await runCli(["delete", `${repo}:v2`, "--json"]);
      if (backend === "distribution") {
        assert.equal(untag.code, 1);
        const error = JSON.parse(untag.stdout).error;
        assert.match(error.message, /by digest/);
      } else {
        assert.deepEqual(JSON.parse(ok(untag).stdout).deleted, "tag");
        assert.equal((await runCli(["digest", `${repo}:v2`])).code, 1);
        assert.equal(
          ok(await runCli(["digest", `${repo}:v1`])).stdout,
          `${pushed.digest}\n`,
        );
      }
      ok(await runCli(["delete", `${repo}@${pushed.digest}`]));
      assert.equal((await runCli(["digest", `${repo}:v1`])).code, 1);
      const again = await runCli(["delete", `${repo}@${pushed.digest}`]);
      assert.equal(again.code, 1);
      const blob = ok(await runCli(["blob", "put", repo, `${work}/data.bin`]))
        .stdout.trim();
      ok(await runCli(["delete", `${repo}@${blob}`, "--blob"]));
      assert.equal((await runCli(["blob", "get", `${repo}@${blob}`])).code, 1);
      assert.equal((await runCli(["delete", `${repo}:v1`, "--blob"])).code, 2);
    });
  },
  { backends: SOCKET_BACKENDS },
);

for (
  const [name, launch] of [
    [
      "distribution without storage.delete.enabled",
      () => startDistribution({ deleteEnabled: false }),
    ],
    [
      "the embedded registry with delete: false",
      () => serveRegistry({ delete: false }),
    ],
  ] as const
) {
  Deno.test({
    name: `oci delete on ${name}: exit 1, UNSUPPORTED and 405 in --json`,
    ...(name.startsWith("distribution") ? requirePeer("docker-registry") : {}),
    async fn() {
      await using registry = await launch();
      await withWork(async (work) => {
        await Deno.writeTextFile(`${work}/data.bin`, "kept");
        const repo = `${registry.host}/app`;
        const blob = ok(await runCli(["blob", "put", repo, `${work}/data.bin`]))
          .stdout.trim();
        const refused = await runCli([
          "delete",
          `${repo}@${blob}`,
          "--blob",
          "--json",
        ]);
        assert.equal(refused.code, 1);
        const error = JSON.parse(refused.stdout).error;
        assert.equal(error.status, 405);
        assert.equal(error.code, "UNSUPPORTED");
        assert.match(error.message, /does not allow deletes/);
      });
    },
  });
}
