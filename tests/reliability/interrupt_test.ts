// The real `oci` process killed (SIGINT and SIGKILL) at seeded random points of a large push and
// a large pull against the real distribution registry, then run again: the rerun completes,
// the stage holds only verified blobs, nothing partial is left in the extraction directory, and
// the rerun moves only the blobs the killed run had not finished.
import { fetchManifest } from "../../src/store/store.ts";
import assert from "node:assert/strict";
import { startDistribution } from "../../peers/distribution.ts";
import { requirePeer } from "../../peers/available.ts";
import { reportSummary } from "./summary.ts";
import { type CliRun, runCli } from "../support/cli.ts";
import { createLayer, type Layer } from "../../src/layer/create_layer.ts";
import { openLayout } from "../../src/store/layout_store.ts";
import { pushImage } from "../../src/image/push.ts";
import { copyImage } from "../../src/image/copy.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { layoutStore } from "../../src/store/layout_store.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { digestOfFile } from "../../src/oci/digest.ts";
import { blobExists } from "../../src/store/remote/blobs.ts";
import { createOpener } from "../../src/transport/opener.ts";
import type { ImageManifest } from "../../src/oci/manifest.ts";
import { seededRandom } from "../support/random.ts";
import { listFiles, listFilesIfAny } from "../support/files.ts";

const LAYERS = 8;
const LAYER_SIZE = 16 << 20;

/** Runs the CLI, killing it with `signal` after `delay` ms (unless it ended first). */
function runOci(
  args: string[],
  kill?: { signal: Deno.Signal; delay: number },
): Promise<CliRun> {
  return runCli(args, {
    permissions: [
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-write",
      "--allow-env",
    ],
    kill,
  });
}

Deno.test({
  name:
    "oci killed by SIGINT or SIGKILL mid push and mid pull: the rerun completes and moves only what is missing",
  ...requirePeer("docker-registry"),
  async fn() {
    const rounds = 4;
    const random = seededRandom(11);
    await using registry = await startDistribution();
    const work = await Deno.makeTempDir({ prefix: "oci-interrupt-" });
    const figures = {
      operations: 0,
      faults: 0,
      retries: 0,
      failures: 0,
      corrupt: 0,
      leaked: 0,
    };
    const extra: Record<string, number> = {
      killedMidway: 0,
      finishedFirst: 0,
      blobsResumed: 0,
      blobsRedone: 0,
    };
    const problems: string[] = [];
    try {
      // An image of 8 incompressible 16 MiB layers, in a local layout and in the registry.
      const sourceStage = await openLayout(`${work}/layers`);
      const layers: Layer[] = [];
      const expected = new Map<string, string>();
      for (let i = 0; i < LAYERS; i++) {
        const dir = `${work}/tree/l${i}`;
        await Deno.mkdir(dir, { recursive: true });
        const file = await Deno.open(`${dir}/data.bin`, {
          write: true,
          create: true,
        });
        const chunk = new Uint8Array(1 << 16);
        for (let n = 0; n < LAYER_SIZE; n += chunk.length) {
          await file.write(crypto.getRandomValues(chunk));
        }
        file.close();
        expected.set(
          `l${i}/data.bin`,
          (await digestOfFile(`${dir}/data.bin`)).digest,
        );
        layers.push(
          await createLayer(dir, sourceStage, { prefix: `l${i}` }),
        );
      }
      const transport = createOpener({
        credentials: () => Promise.resolve(undefined),
      });
      const seed = parseReference(`${registry.host}/interrupt/seed:v1`);
      await pushImage(seed, {
        layers,
        transport,
        platform: { os: "linux", architecture: "amd64" },
      });
      await copyImage(
        remoteStore(seed, { transport }),
        await layoutStore(`${work}/source`),
        "v1",
        { platform: { os: "linux", architecture: "amd64" } },
      );
      const manifest = await fetchManifest(
        await layoutStore(`${work}/source`),
        "v1",
      );
      const document = manifest.document as ImageManifest;
      const blobs = [document.config, ...document.layers];
      assert.equal(blobs.length, LAYERS + 1);

      const verifyStage = async (root: string, when: string) => {
        for (const name of await listFilesIfAny(`${root}/blobs/sha256`)) {
          if (!/^[0-9a-f]{64}$/.test(name)) continue; // a killed writer's temporary
          const { digest } = await digestOfFile(`${root}/blobs/sha256/${name}`);
          if (digest !== `sha256:${name}`) {
            figures.corrupt++;
            problems.push(`${when}: ${root}/blobs/sha256/${name} is corrupt`);
          }
        }
      };
      const signals: Deno.Signal[] = ["SIGINT", "SIGKILL"];
      // How long whole runs take here, so that kills land between start and end.
      const timed = async (args: string[]) => {
        const started = performance.now();
        const run = await runOci(args);
        assert.equal(run.code, 0, run.stderr);
        return performance.now() - started;
      };
      const pushTime = await timed([
        "copy",
        `layout:${work}/source:v1`,
        `${registry.host}/interrupt/timing:v1`,
      ]);
      const pullTime = await timed([
        "pull",
        `${registry.host}/interrupt/seed:v1`,
        `${work}/timing-out`,
        "--cache",
        `${work}/timing-cache`,
      ]);
      extra.pushMs = Math.round(pushTime);
      extra.pullMs = Math.round(pullTime);
      const killAt = (total: number) =>
        Math.round(total * (0.2 + 0.7 * random()));

      for (let round = 0; round < rounds; round++) {
        const signal = signals[round % 2];
        // --- push: layout → registry, killed, then again.
        const target = `${registry.host}/interrupt/push${round}:v1`;
        const pushArgs = ["copy", `layout:${work}/source:v1`, target, "-v"];
        const delay = killAt(pushTime);
        const killed = await runOci(pushArgs, { signal, delay });
        figures.operations++;
        figures.faults++;
        if (killed.code === 0) extra.finishedFirst++;
        else {
          extra.killedMidway++;
          if (signal === "SIGINT") {
            assert.equal(killed.code, 130, killed.stderr);
          } else assert.equal(killed.signal, "SIGKILL");
        }
        const targetRef = parseReference(target);
        const present: string[] = [];
        for (const blob of blobs) {
          if (await blobExists(targetRef, blob.digest, { transport })) {
            present.push(blob.digest);
          }
        }
        const rerun = await runOci(pushArgs);
        figures.operations++;
        if (rerun.code !== 0) {
          figures.failures++;
          problems.push(
            `push rerun ${round}: exit ${rerun.code}: ${rerun.stderr}`,
          );
          continue;
        }
        // Blob granularity: the rerun starts an upload only for blobs the registry lacked when
        // it looked (its HEADs), and those are among the ones missing after the kill. (The
        // registry may still finish a PUT it had fully received after the client died, so the
        // two counts can differ.)
        const lines = rerun.stderr.split("\n");
        const uploads = lines.filter((line) =>
          /^POST \S+\/blobs\/uploads\/\S* 202/.test(line)
        )
          .length;
        const missing = lines.filter((line) =>
          /^HEAD \S+\/blobs\/sha256:[0-9a-f]{64} 404/.test(line)
        )
          .length;
        const context =
          `push round ${round} (${signal} at ${delay} ms): ${present.length} blobs were there after the kill, ${missing} when the rerun looked, ${uploads} uploads\n${rerun.stderr}`;
        assert.equal(uploads, missing, context);
        assert.ok(missing <= blobs.length - present.length, context);
        extra.blobsResumed += present.length;
        extra.blobsRedone += uploads;
        for (const blob of blobs) {
          assert.ok(await blobExists(targetRef, blob.digest, { transport }));
        }

        // --- pull: registry → directory through a fresh stage, killed, then again.
        const cache = `${work}/cache${round}`;
        const out = `${work}/out${round}`;
        const pullArgs = [
          "pull",
          `${registry.host}/interrupt/seed:v1`,
          out,
          "--cache",
          cache,
          "-v",
        ];
        const pullDelay = killAt(pullTime);
        const pullKilled = await runOci(pullArgs, { signal, delay: pullDelay });
        figures.operations++;
        figures.faults++;
        if (pullKilled.code === 0) {
          extra.finishedFirst++;
        } else extra.killedMidway++;
        await verifyStage(cache, `after ${signal}`);
        const staged = (await listFilesIfAny(`${cache}/blobs/sha256`)).filter((
          name,
        ) =>
          /^[0-9a-f]{64}$/.test(name)
        );
        const pulled = await runOci(pullArgs);
        figures.operations++;
        if (pulled.code !== 0) {
          figures.failures++;
          problems.push(
            `pull rerun ${round}: exit ${pulled.code}: ${pulled.stderr}`,
          );
          continue;
        }
        // Blob granularity: only the blobs the stage lacked are downloaded again.
        const downloads = pulled.stderr.split("\n").filter((line) =>
          /^GET \S+\/blobs\/sha256:[0-9a-f]{64} 200/.test(line)
        ).length;
        assert.equal(
          downloads,
          blobs.length - staged.filter((name) =>
            blobs.some((b) =>
              b.digest === `sha256:${name}`
            )
          ).length,
          `pull round ${round} (${signal} at ${pullDelay} ms)\n${pulled.stderr}`,
        );
        await verifyStage(cache, "after the rerun");
        // The stage holds only verified blobs and layout files: a killed writer's leftovers are gone.
        for (const name of await listFiles(cache)) {
          if (
            !/^(oci-layout|index\.json|blobs\/sha256\/[0-9a-f]{64})$/.test(name)
          ) {
            figures.corrupt++;
            problems.push(`stage ${cache} holds ${name}`);
          }
        }
        // The extraction directory holds exactly the image's files, whole.
        const files = (await listFiles(out)).sort();
        if (
          JSON.stringify(files) !== JSON.stringify([...expected.keys()].sort())
        ) {
          figures.corrupt++;
          problems.push(`${out} holds ${files.join(", ")}`);
        }
        for (const [path, digest] of expected) {
          const found = await digestOfFile(`${out}/${path}`).catch(() =>
            undefined
          );
          if (found?.digest !== digest) {
            figures.corrupt++;
            problems.push(`${out}/${path} is not the image's file`);
          }
        }
      }
      await reportSummary("interrupt", { ...figures, extra });
      assert.deepEqual(problems, []);
      assert.ok(
        extra.killedMidway > 0,
        "no run was killed midway: the delays are too long",
      );
    } finally {
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
