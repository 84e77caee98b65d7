// Ctrl-C in the real `oci` process, run with exactly the grants of `deno task oci`, in the
// middle of a 300 MiB download (pull) and a 300 MiB upload (copy from a layout): exit status
// 130 soon after the signal, nothing partial in the stage or the target, the upload session
// DELETEd.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  BIG_SIZE,
  type BigBlobRegistry,
  startBigBlobRegistry,
  temporariesUnder,
} from "../support/big_blob.ts";
import { CLI } from "../support/cli.ts";
import { listFilesIfAny } from "../support/files.ts";
import { openLayout } from "../../src/store/layout_store.ts";
import { digestOf } from "../../src/oci/digest.ts";
import {
  OCI_CONFIG_MEDIA_TYPE,
  OCI_LAYER_TAR_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "../../src/oci/media_types.ts";

/** Where Ctrl-C lands: this much of the blob has moved. */
const SIGNAL_AFTER = 32 << 20;
/** The issue asks for one second; the test allows for a loaded machine. */
const EXIT_WITHIN_MS = 3000;

/** The permission flags of `deno task oci`, read from deno.json. */
async function taskGrants(): Promise<string[]> {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  );
  const words = String(config.tasks.oci.command).split(/\s+/);
  return words.slice(words.indexOf("run") + 1, words.indexOf("cli.ts"));
}

/** What a run interrupted by SIGINT did. */
interface Interrupted {
  code: number;
  /** The signal that killed it: null when it handled the signal and exited by itself. */
  signal: Deno.Signal | null;
  stderr: string;
  /** From the signal to the exit. */
  ms: number;
}

/** Runs the CLI and sends it SIGINT once `trigger` resolves. */
async function interruptCli(
  args: string[],
  home: string,
  trigger: Promise<void>,
): Promise<Interrupted> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...await taskGrants(), CLI, ...args],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: {
      NO_COLOR: "1",
      HOME: home,
      XDG_CACHE_HOME: join(home, "cache"),
      DOCKER_CONFIG: join(home, "docker"),
    },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let signalledAt: number | undefined;
  const exited = child.status.then((status) => ({
    status,
    at: performance.now(),
  }));
  await Promise.race([
    trigger.then(() => {
      signalledAt = performance.now();
      child.kill("SIGINT");
    }),
    exited,
  ]);
  const { status, at } = await exited;
  const text = await stderr;
  assert.ok(signalledAt !== undefined, `it ended before the signal: ${text}`);
  return {
    code: status.code,
    signal: status.signal,
    stderr: text,
    ms: at - signalledAt,
  };
}

/** A layout holding image `v1` whose one layer is the big blob (a sparse file of zeros). */
async function bigLayout(dir: string, registry: BigBlobRegistry) {
  const layout = await openLayout(dir);
  const blobPath = layout.blobPath(registry.blob.digest);
  {
    using file = await Deno.open(blobPath, { write: true, createNew: true });
    await file.truncate(BIG_SIZE);
  }
  const config = JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: [registry.blob.digest] },
  });
  const configDescriptor = {
    mediaType: OCI_CONFIG_MEDIA_TYPE,
    digest: digestOf(config),
    size: new TextEncoder().encode(config).byteLength,
  };
  await layout.writeBlob(
    configDescriptor.digest,
    new Response(config).body!,
    { size: configDescriptor.size },
  );
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    config: configDescriptor,
    layers: [{ ...registry.blob, mediaType: OCI_LAYER_TAR_MEDIA_TYPE }],
  });
  const bytes = new TextEncoder().encode(manifest);
  const descriptor = {
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    digest: digestOf(bytes),
    size: bytes.byteLength,
  };
  await layout.writeBlob(descriptor.digest, new Response(bytes).body!, {
    size: descriptor.size,
  });
  await layout.tag(descriptor, "v1");
}

const figures: Record<string, number> = {};

/** It caught the signal, wound down and exited 130 by itself (a kill by SIGINT also reads 130). */
function assertInterrupted(run: Interrupted): void {
  assert.equal(run.signal, null, `killed by ${run.signal}: ${run.stderr}`);
  assert.equal(run.code, 130, run.stderr);
  assert.match(run.stderr, /interrupted; nothing partial was kept/);
}

Deno.test("oci pull: Ctrl-C mid-blob exits 130 at once, with nothing partial in the stage or the target", async () => {
  await using registry = await startBigBlobRegistry();
  const dir = await Deno.makeTempDir({ prefix: "oci-cli-cancel-" });
  try {
    const run = await interruptCli(
      [
        "pull",
        `${registry.host}/${registry.source}:v1`,
        `${dir}/rootfs`,
        "--cache",
        `${dir}/stage`,
        "--platform",
        "linux/amd64",
      ],
      dir,
      registry.whenSent(SIGNAL_AFTER),
    );
    figures["pull (download)"] = run.ms;
    assertInterrupted(run);
    assert.ok(
      run.ms < EXIT_WITHIN_MS,
      `${run.ms.toFixed(0)} ms from SIGINT to exit`,
    );
    assert.ok(registry.sent < BIG_SIZE, "the whole blob was sent");
    assert.deepEqual(await temporariesUnder(dir), []);
    assert.deepEqual(await listFilesIfAny(`${dir}/rootfs`), []);
    const stage = await openLayout(`${dir}/stage`);
    assert.equal(await stage.hasBlob(registry.blob.digest), false);
    assert.equal(await stage.tagged("v1"), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("oci copy layout → registry: Ctrl-C mid-upload exits 130 at once and DELETEs the upload session", async () => {
  await using registry = await startBigBlobRegistry();
  const dir = await Deno.makeTempDir({ prefix: "oci-cli-cancel-" });
  try {
    await bigLayout(`${dir}/source`, registry);
    const run = await interruptCli(
      [
        "copy",
        `layout:${dir}/source:v1`,
        `${registry.host}/big/pushed:v1`,
        "--platform",
        "linux/amd64",
      ],
      dir,
      registry.whenReceived(SIGNAL_AFTER),
    );
    figures["copy to a registry (upload)"] = run.ms;
    assertInterrupted(run);
    assert.ok(
      run.ms < EXIT_WITHIN_MS,
      `${run.ms.toFixed(0)} ms from SIGINT to exit`,
    );
    assert.ok(registry.received < BIG_SIZE, "the whole blob was uploaded");
    const unfinished = registry.unfinishedSessions();
    assert.ok(unfinished.length > 0, "no upload was in progress");
    assert.deepEqual(
      registry.uploadDeletes().map((r) => r.path),
      unfinished,
    );
    assert.ok(
      !registry.requests.some((r) => r.path.includes("/manifests/")),
      "a manifest was pushed",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("oci copy registry → layout: Ctrl-C mid-blob exits 130 at once, with nothing partial in the layout", async () => {
  await using registry = await startBigBlobRegistry();
  const dir = await Deno.makeTempDir({ prefix: "oci-cli-cancel-" });
  try {
    const run = await interruptCli(
      [
        "copy",
        `${registry.host}/${registry.source}:v1`,
        `layout:${dir}/target:v1`,
        "--platform",
        "linux/amd64",
      ],
      dir,
      registry.whenSent(SIGNAL_AFTER),
    );
    figures["copy to a layout (download)"] = run.ms;
    assertInterrupted(run);
    assert.ok(
      run.ms < EXIT_WITHIN_MS,
      `${run.ms.toFixed(0)} ms from SIGINT to exit`,
    );
    assert.deepEqual(await temporariesUnder(dir), []);
    const layout = await openLayout(`${dir}/target`);
    assert.equal(await layout.hasBlob(registry.blob.digest), false);
    assert.equal(await layout.tagged("v1"), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cancel latencies (CLI, SIGINT to exit)", () => {
  console.log(
    Object.entries(figures).map(([name, ms]) => `${name}: ${ms.toFixed(0)} ms`)
      .join("; "),
  );
});
