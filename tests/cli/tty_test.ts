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

/**
 * What a terminal shows at the end of the text (scrollback included): `\r`, `\n`, cursor up
 * (`ESC[nA`), erase below (`ESC[J`) and erase line (`ESC[2K`), as the display uses them.
 */
function screenOf(text: string): string[] {
  const rows: string[] = [""];
  let row = 0;
  let col = 0;
  // deno-lint-ignore no-control-regex
  const tokens = text.match(/\x1b\[[0-9;]*[A-Za-z]|\r|\n|[^\x1b\r\n]+/g) ?? [];
  for (const token of tokens) {
    if (token === "\r") col = 0;
    else if (token === "\n") {
      row++;
      col = 0;
      if (rows.length <= row) rows.push("");
    } else if (token.startsWith("\x1b[")) {
      const n = Number(token.slice(2, -1) || "1");
      if (token.endsWith("A")) row = Math.max(0, row - n);
      else if (token === "\x1b[J") {
        rows.length = row + 1;
        rows[row] = rows[row].slice(0, col);
      } else if (token === "\x1b[2K") rows[row] = "";
    } else {
      rows[row] = rows[row].slice(0, col) + token +
        rows[row].slice(col + token.length);
      col += token.length;
    }
  }
  return rows.filter((l) => l.trim() !== "");
}

/** Runs the real CLI on a pseudo-terminal; the lines a terminal keeps, escapes taken out. */
async function onTerminal(args: readonly string[]): Promise<string[]> {
  return (await onTerminalRaw(args)).drawn;
}

/** The CLI on a pseudo-terminal: every line as drawn, and the screen at the end. */
async function onTerminalRaw(
  args: readonly string[],
): Promise<{ drawn: string[]; screen: string[] }> {
  const command = [Deno.execPath(), "run", ...ALL_PERMISSIONS, CLI, ...args]
    .map((a) => `'${a}'`).join(" ");
  const out = await new Deno.Command("script", {
    args: ["-q", "-e", "-c", command, "/dev/null"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", TERM: "xterm" },
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, text);
  // Every redraw is kept: each line as it was drawn.
  // deno-lint-ignore no-control-regex
  const plain = text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");
  return {
    drawn: plain.split(/\r?\n|\r/).filter((l) => l.trim() !== ""),
    screen: screenOf(text),
  };
}

const blobLine =
  /^[0-9a-f]{12} (waiting|exists|downloading|uploading|extracting|done) +[0-9.]+ (B|KiB|MiB) \/ [0-9.]+ (B|KiB|MiB)( {2}[0-9.]+ (B|KiB|MiB)\/s( {2}ETA \S+)?)?$/;
const totalLine =
  /^total +(\d+\/\d+|done) +[0-9.]+ (B|KiB|MiB) \/ [0-9.]+ (B|KiB|MiB)( {2}[0-9.]+ (B|KiB|MiB)\/s( {2}ETA \S+)?)?$/;
const packLine =
  /^layer +packing +\d+\/\d+ files {2}[0-9.]+ (B|KiB|MiB) \/ [0-9.]+ (B|KiB|MiB)( {2}[0-9.]+ (B|KiB|MiB)\/s( {2}ETA \S+)?)?$/;
const requestLine =
  /^(GET|HEAD|POST|PUT|PATCH|DELETE) http:\/\/\S+ \d{3} \d+ms$/;

/** Every line is one message of the given kinds: nothing ran into a progress line. */
function oneMessageEach(lines: readonly string[], kinds: readonly RegExp[]) {
  for (const line of lines) {
    assert.ok(
      kinds.some((kind) => kind.test(line)),
      `one message a line: ${JSON.stringify(line)}`,
    );
  }
}

const pulledLine = /^Pulled sha256:[0-9a-f]{64} into \S+$/;

Deno.test({
  name:
    "CLI on a terminal: a 3-layer pull shows 3 blob lines and a total reaching done",
  ignore: !hasScript(),
  async fn() {
    const { image, server } = await slowImage();
    await using _ = server;
    const work = await Deno.makeTempDir();
    try {
      const lines = await onTerminal([
        "pull",
        `${server.host}/app:v1`,
        `${work}/out`,
        "--cache",
        `${work}/cache`,
      ]);
      oneMessageEach(lines, [blobLine, totalLine, pulledLine]);
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

Deno.test({
  name:
    "CLI on a terminal with --verbose: every request line is a line of its own, none inside the progress block",
  ignore: !hasScript(),
  async fn() {
    const { image, server } = await slowImage();
    await using _ = server;
    const work = await Deno.makeTempDir();
    try {
      const { drawn: lines, screen } = await onTerminalRaw([
        "pull",
        `${server.host}/app:v1`,
        `${work}/out`,
        "--cache",
        `${work}/cache`,
        "--verbose",
      ]);
      oneMessageEach(lines, [blobLine, totalLine, pulledLine, requestLine]);
      const requests = lines.filter((l) => requestLine.test(l));
      for (const layer of image.layers) {
        assert.ok(
          requests.some((l) =>
            l.startsWith("GET ") && l.includes(layer.descriptor.digest)
          ),
          `a request line for ${layer.descriptor.digest}`,
        );
      }
      const firstBlob = lines.findIndex((l) => blobLine.test(l));
      assert.ok(
        firstBlob >= 0 &&
          lines.slice(firstBlob).some((l) => requestLine.test(l)),
        "request lines while the block is shown",
      );
      // On the screen at the end, every request line is still there (no redraw erased one),
      // then the block once: 3 layers done and the total.
      assert.deepEqual(screen.filter((l) => requestLine.test(l)), requests);
      const blobs = screen.filter((l) => blobLine.test(l));
      assert.equal(blobs.length, 3, JSON.stringify(screen));
      assert.ok(blobs.every((l) => / done /.test(l)), JSON.stringify(blobs));
      assert.deepEqual(
        screen.slice(-5).map((l) =>
          blobLine.test(l) ? "blob" : totalLine.test(l) ? "total" : "other"
        ),
        ["blob", "blob", "blob", "total", "other"],
      );
      // The block is drawn again under each request line: the last lines are the block.
      assert.match(lines.at(-2)!, /^total +done/);
      assert.match(lines.at(-1)!, pulledLine);
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "CLI on a terminal: pushing a directory shows a packing line (files and bytes read) before the blob lines",
  ignore: !hasScript(),
  async fn() {
    const work = await Deno.makeTempDir();
    try {
      await Deno.mkdir(`${work}/tree`);
      for (let i = 0; i < 4; i++) {
        const bytes = new Uint8Array(MiB);
        crypto.getRandomValues(bytes.subarray(0, 65536));
        await Deno.writeFile(`${work}/tree/f${i}`, bytes);
      }
      const lines = await onTerminal([
        "push",
        `${work}/tree`,
        `layout:${work}/out:v1`,
        "--cache",
        `${work}/cache`,
      ]);
      const packed =
        /^Packed \S+: sha256:[0-9a-f]{64} \([0-9.]+ (B|KiB|MiB)\)$/;
      oneMessageEach(lines, [
        packLine,
        packed,
        blobLine,
        totalLine,
        /^sha256:[0-9a-f]{64}$/,
      ]);
      const packing = lines.filter((l) => packLine.test(l));
      assert.ok(packing.length > 0, JSON.stringify(lines));
      assert.match(
        packing[0],
        / \d+\/4 files {2}[0-9.]+ (B|KiB|MiB) \/ 4\.0 MiB/,
      );
      const at = lines.findIndex((l) => packed.test(l));
      assert.ok(at > lines.indexOf(packing.at(-1)!), "packing before Packed");
      assert.ok(
        !lines.slice(at).some((l) => packLine.test(l)),
        "no packing line once packed",
      );
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

Deno.test("CLI without a terminal: a copy logs one line per layer, not two", async () => {
  const { image, server } = await slowImage();
  await using _ = server;
  const work = await Deno.makeTempDir();
  try {
    const run = await runCli([
      "copy",
      `${server.host}/app:v1`,
      `layout:${work}/copy:v1`,
    ]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stderr.trim().split("\n");
    assert.equal(lines.length, 3, run.stderr);
    assert.deepEqual(
      lines.map((l) => l.slice(0, 12)).sort(),
      image.layers.map((l) => shortOf(l.descriptor.digest)).sort(),
    );
    for (const line of lines) assert.match(line, /^[0-9a-f]{12} done 1\.0 MiB/);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("CLI without a terminal: a pull of cached layers logs each at done, once", async () => {
  const { image, server } = await slowImage();
  await using _ = server;
  const work = await Deno.makeTempDir();
  try {
    const pull = (out: string) =>
      runCli([
        "pull",
        `${server.host}/app:v1`,
        `${work}/${out}`,
        "--cache",
        `${work}/cache`,
      ]);
    assert.equal((await pull("first")).code, 0);
    const run = await pull("second");
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stderr.trim().split("\n");
    assert.equal(lines.length, 3, run.stderr);
    assert.deepEqual(
      lines.map((l) => l.slice(0, 12)).sort(),
      image.layers.map((l) => shortOf(l.descriptor.digest)).sort(),
    );
    for (const line of lines) {
      assert.match(line, /^[0-9a-f]{12} done 1\.0 MiB \(cached\)$/);
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
