// The real CLI on a pseudo-terminal (`script -q`): a 3-layer pull through a slow registry
// shows a line per layer and a total that reach done, nothing run together; without a
// terminal, one line per layer.
import assert from "node:assert/strict";
import { createRegistry } from "../../src/server/handler.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { hostPlatform } from "../../src/oci/platform.ts";
import { pushTestImage } from "../support/images.ts";
import { pullableImage } from "../support/pullable.ts";
import { ALL_PERMISSIONS, CLI, runCli } from "../support/cli.ts";
import { throttledRegistry } from "../support/throttle.ts";

const MiB = 1024 * 1024;

async function slowImage() {
  const registry = createRegistry();
  const image = pullableImage(hostPlatform(), [MiB + 1, MiB + 2, MiB + 3]);
  await pushTestImage(parseReference("127.0.0.1:5000/app:v1"), image, {
    transport: (request) => registry(request),
  });
  return { image, server: throttledRegistry(registry, 2 * MiB) };
}

const shortOf = (digest: string) => digest.slice(7, 19);

function hasScript(): boolean {
  try {
    new Deno.Command("script", { args: ["--version"] }).outputSync();
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "CLI on a terminal: a 3-layer pull shows 3 blob lines and a total reaching done",
  ignore: !hasScript(),
  async fn() {
    const { image, server } = await slowImage();
    await using _ = server;
    const work = await Deno.makeTempDir();
    try {
      const command = [
        Deno.execPath(),
        "run",
        ...ALL_PERMISSIONS,
        CLI,
        "pull",
        `${server.host}/app:v1`,
        `${work}/out`,
        "--cache",
        `${work}/cache`,
      ].map((a) => `'${a}'`).join(" ");
      const out = await new Deno.Command("script", {
        args: ["-q", "-e", "-c", command, "/dev/null"],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1", TERM: "xterm" },
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, text);
      // The lines as a terminal keeps them: every redraw, escape sequences taken out.
      // deno-lint-ignore no-control-regex
      const plain = text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");
      const lines = plain.split(/\r?\n|\r/).filter((l) => l.trim() !== "");
      const blobLine =
        /^[0-9a-f]{12} (waiting|exists|downloading|extracting|done) +[0-9.]+ (B|KiB|MiB) \/ [0-9.]+ (B|KiB|MiB)( {2}[0-9.]+ (B|KiB|MiB)\/s( {2}ETA \S+)?)?$/;
      const totalLine =
        /^total +(\d+\/\d+|done) +[0-9.]+ (B|KiB|MiB) \/ [0-9.]+ (B|KiB|MiB)( {2}[0-9.]+ (B|KiB|MiB)\/s( {2}ETA \S+)?)?$/;
      for (const line of lines) {
        assert.ok(
          blobLine.test(line) || totalLine.test(line) ||
            /^Pulled sha256:[0-9a-f]{64} into \S+$/.test(line),
          `one message a line: ${JSON.stringify(line)}`,
        );
      }
      const last = lines.slice(-5);
      for (const layer of image.layers) {
        const short = shortOf(layer.descriptor.digest);
        assert.ok(
          last.some((l) => l.startsWith(`${short} done`)),
          `${short} done in ${JSON.stringify(last)}`,
        );
      }
      assert.match(last[3], /^total +done/);
      assert.match(last[4], /^Pulled /);
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test("CLI without a terminal: a 3-layer pull logs one line per layer", async () => {
  const { image, server } = await slowImage();
  await using _ = server;
  const work = await Deno.makeTempDir();
  try {
    const run = await runCli([
      "pull",
      `${server.host}/app:v1`,
      `${work}/out`,
      "--cache",
      `${work}/cache`,
    ]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stderr.trim().split("\n");
    assert.equal(lines.length, 3, run.stderr);
    assert.deepEqual(
      lines.map((l) => l.slice(0, 12)).sort(),
      image.layers.map((l) => shortOf(l.descriptor.digest)).sort(),
    );
    for (const line of lines) {
      assert.match(line, /^[0-9a-f]{12} done 1\.0 MiB in [0-9.]+s/);
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
