// `oci push --compression`: the layer compressed so, the manifest listing its media type, and
// `oci pull` extracting it; a compression we do not write is a usage error.
import assert from "node:assert/strict";
import { serveRegistry } from "../../src/server/serve.ts";
import { runCli } from "../support/cli.ts";

const MEDIA_TYPES = {
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  none: "application/vnd.oci.image.layer.v1.tar",
} as const;

Deno.test("oci push --compression gzip|zstd|none writes that layer media type, and oci pull extracts each", async () => {
  await using registry = await serveRegistry({});
  const work = await Deno.makeTempDir({ prefix: "oci-cli-zstd-" });
  try {
    await Deno.mkdir(`${work}/src/bin`, { recursive: true });
    await Deno.writeTextFile(`${work}/src/bin/tool`, "tool ".repeat(1000));
    const env = { XDG_CACHE_HOME: `${work}/cache` };
    for (const compression of ["gzip", "zstd", "none"] as const) {
      for (
        const ref of [
          `layout:${work}/layout:${compression}`,
          `${registry.host}/cli/app:${compression}`,
        ]
      ) {
        const args = ["push", `${work}/src`, ref, "--json"];
        // gzip is the default: said once, left out once.
        if (compression !== "gzip" || ref.startsWith("layout:")) {
          args.push("--compression", compression);
        }
        const pushed = await runCli(args, { env });
        assert.equal(pushed.code, 0, pushed.stderr);
        const layer = JSON.parse(pushed.stdout).layer;
        assert.equal(layer.mediaType, MEDIA_TYPES[compression]);
        const inspected = await runCli(["inspect", ref, "--raw"], { env });
        assert.equal(inspected.code, 0, inspected.stderr);
        const manifest = JSON.parse(inspected.stdout);
        assert.deepEqual(
          manifest.layers.map((l: { mediaType: string }) => l.mediaType),
          [MEDIA_TYPES[compression]],
          `${ref}`,
        );
        const out = `${work}/out-${compression}-${ref.startsWith("layout:")}`;
        const pulled = await runCli(["pull", ref, out], { env });
        assert.equal(pulled.code, 0, pulled.stderr);
        assert.equal(
          await Deno.readTextFile(`${out}/bin/tool`),
          "tool ".repeat(1000),
        );
      }
    }
    const refused = await runCli([
      "push",
      `${work}/src`,
      `layout:${work}/layout:xz`,
      "--compression",
      "xz",
    ], { env });
    assert.equal(refused.code, 2);
    assert.match(
      refused.stderr,
      /--compression is gzip, zstd or none, got "xz"/,
    );
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
