// 200 mixed operations (push, pull, copy, tags) through a seeded fault-injecting proxy in front
// of the real CNCF distribution registry, with Basic auth: every operation succeeds with the
// right content or fails with a clear, typed error; the stage and the extraction directories
// hold no corrupt or partial file; every flipped byte is caught; no secret reaches a message.
import assert from "node:assert/strict";
import { startDistribution } from "../../peers/distribution.ts";
import { requirePeer } from "../../peers/available.ts";
import { startFaultProxy } from "../support/fault_proxy.ts";
import { reportSummary } from "./summary.ts";
import { createOpener } from "../../src/transport/opener.ts";
import { staticCredentials } from "../../src/transport/credentials.ts";
import { RegistryError } from "../../src/transport/errors.ts";
import { parseReference, withTag } from "../../src/oci/reference.ts";
import { DigestMismatchError, digestOfFile } from "../../src/oci/digest.ts";
import { ManifestError } from "../../src/oci/parse_manifest.ts";
import { createLayer, type Layer } from "../../src/layer/create_layer.ts";
import { openLayout } from "../../src/store/layout_store.ts";
import { pushImage } from "../../src/image/push.ts";
import { pullImage } from "../../src/image/pull.ts";
import { copyImage } from "../../src/image/copy.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { layoutStore } from "../../src/store/layout_store.ts";
import { listTags } from "../../src/store/remote/tags.ts";
import { fetchManifest } from "../../src/store/remote/manifests.ts";
import { blobExists } from "../../src/store/remote/blobs.ts";
import type { Platform } from "../../src/oci/platform.ts";
import type { ImageManifest } from "../../src/oci/manifest.ts";
import { pseudoRandomBytes } from "../support/images.ts";
import { seededRandom } from "../support/random.ts";
import { everythingAbout } from "../support/errors.ts";

const PLATFORM: Platform = { os: "linux", architecture: "amd64" };
const CREATED = "2026-01-01T00:00:00Z";

/** Every regular file under a directory, relative path to bytes. */
async function readTree(
  root: string,
  prefix = "",
  out = new Map<string, Uint8Array>(),
): Promise<Map<string, Uint8Array>> {
  for await (const entry of Deno.readDir(`${root}/${prefix}`)) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) await readTree(root, path, out);
    else out.set(path, await Deno.readFile(`${root}/${path}`));
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

Deno.test({
  name:
    "200 mixed operations through a 10 % fault proxy: right content or a clear error",
  ...requirePeer("docker-registry"),
  async fn() {
    const operations = 200;
    const password = `pw-${crypto.randomUUID()}`;
    const username = "ci";
    const basic = btoa(`${username}:${password}`);
    await using registry = await startDistribution({
      htpasswd: { [username]: password },
    });
    await using proxy = startFaultProxy({
      target: registry.url,
      rate: 0.1,
      seed: 2026,
      // Random faults flip ~1 in 60 blob GETs: make sure every run catches some flips.
      flipEveryBlobGets: 15,
    });
    const work = await Deno.makeTempDir({ prefix: "oci-reliability-" });
    const logs: string[] = [];
    let retries = 0;
    let mismatchesCaught = 0;
    const countRetry = (error: unknown) => {
      retries++;
      if (error instanceof DigestMismatchError) mismatchesCaught++;
      logs.push(everythingAbout(error));
    };
    const credentials = staticCredentials({ username, password });
    const direct = createOpener({ credentials, retry: false });
    const faulty = createOpener({
      credentials,
      retry: {
        baseDelay: 20,
        maxDelay: 1000,
        onRetry: (event) => {
          retries++;
          logs.push(
            `${event.request.method} ${event.request.url} ${
              event.status ?? ""
            } ${event.error ? everythingAbout(event.error) : ""}`,
          );
        },
      },
      onAuth: (event) => logs.push(JSON.stringify(event)),
    });
    try {
      // Inputs: a common tree and four application trees, packed once, pushed directly.
      const trees = `${work}/trees`;
      const stageSource = await openLayout(`${work}/source-stage`);
      const makeTree = async (name: string, seed: number, files: number) => {
        for (let i = 0; i < files; i++) {
          const dir = `${trees}/${name}/d${i % 3}`;
          await Deno.mkdir(dir, { recursive: true });
          await Deno.writeFile(
            `${dir}/f${i}.bin`,
            pseudoRandomBytes(
              20_000 + ((seed * 7919 + i * 104_729) % 400_000),
              seed * 1000 + i,
            ),
          );
        }
      };
      await makeTree("common", 1, 6);
      const common = await createLayer(`${trees}/common`, stageSource, {
        prefix: "common",
      });
      const apps: Layer[] = [];
      const expected: Map<string, Uint8Array>[] = [];
      const commonFiles = await readTree(`${trees}/common`);
      for (let i = 0; i < 4; i++) {
        await makeTree(`app${i}`, i + 2, 4 + i);
        apps.push(
          await createLayer(`${trees}/app${i}`, stageSource, {
            prefix: `app${i}`,
          }),
        );
        const files = new Map<string, Uint8Array>();
        for (const [path, bytes] of commonFiles) {
          files.set(`common/${path}`, bytes);
        }
        for (const [path, bytes] of await readTree(`${trees}/app${i}`)) {
          files.set(`app${i}/${path}`, bytes);
        }
        expected.push(files);
      }
      const base = parseReference(`${registry.host}/reliability/base`);
      const seededDigests: string[] = [];
      for (let i = 0; i < 4; i++) {
        const descriptor = await pushImage(withTag(base, `img${i}`), {
          layers: [common, apps[i]],
          platform: PLATFORM,
          created: CREATED,
          transport: direct,
        });
        seededDigests.push(descriptor.digest);
      }

      const viaProxy = (repository: string) =>
        parseReference(`${proxy.host}/${repository}`);
      const directRef = (repository: string) =>
        parseReference(`${registry.host}/${repository}`);
      // Half the pulls share one stage (concurrent writers of the same blobs), half start from
      // an empty one (so that blob downloads, and their faults, keep happening).
      const layouts = [
        await openLayout(`${work}/stage`),
        await openLayout(`${work}/copies`),
      ];
      const freshLayout = async (name: string) => {
        const layout = await openLayout(`${work}/${name}`);
        layouts.push(layout);
        return layout;
      };
      const random = seededRandom(7);
      const failures: { op: string; error: unknown }[] = [];
      const counts: Record<string, number> = {};
      const pullDirs: { dir: string; image: number; ok: boolean }[] = [];

      const runOp = async (k: number): Promise<void> => {
        const roll = random();
        const image = Math.floor(random() * 4);
        const op = roll < 0.25
          ? "push"
          : roll < 0.6
          ? "pull"
          : roll < 0.85
          ? "copy"
          : "tags";
        counts[op] = (counts[op] ?? 0) + 1;
        const pullDir = `${work}/pulls/op${k}`;
        try {
          if (op === "push") {
            const repository = `reliability/pushed${k % 4}`;
            const descriptor = await pushImage(
              withTag(viaProxy(repository), `op${k}`),
              {
                layers: [common, apps[image]],
                platform: PLATFORM,
                created: CREATED,
                transport: faulty,
                onRetry: countRetry,
              },
            );
            // The same inputs give the same manifest as the one pushed directly.
            assert.equal(descriptor.digest, seededDigests[image]);
            const stored = await fetchManifest(
              withTag(directRef(repository), `op${k}`),
              { transport: direct },
            );
            assert.equal(stored.descriptor.digest, descriptor.digest);
            const manifest = stored.document as ImageManifest;
            for (const blob of [manifest.config, ...manifest.layers]) {
              assert.ok(
                await blobExists(directRef(repository), blob.digest, {
                  transport: direct,
                }),
                `${blob.digest} missing in ${repository}`,
              );
            }
          } else if (op === "pull") {
            pullDirs.push({ dir: pullDir, image, ok: false });
            await pullImage(
              withTag(viaProxy("reliability/base"), `img${image}`),
              pullDir,
              {
                cache: k % 2 === 0
                  ? layouts[0]
                  : await freshLayout(`stage-op${k}`),
                platform: PLATFORM,
                transport: faulty,
                onRetry: countRetry,
              },
            );
            const tree = await readTree(pullDir);
            assert.deepEqual(
              [...tree.keys()].sort(),
              [...expected[image].keys()].sort(),
            );
            for (const [path, bytes] of tree) {
              assert.ok(
                sameBytes(bytes, expected[image].get(path)!),
                `${path} differs`,
              );
            }
            pullDirs[pullDirs.length - 1].ok = true;
          } else if (op === "copy") {
            const source = remoteStore(viaProxy("reliability/base"), {
              transport: faulty,
            });
            if (k % 2 === 0) {
              const repository = `reliability/copies${k % 3}`;
              await copyImage(
                source,
                remoteStore(viaProxy(repository), { transport: faulty }),
                `img${image}`,
                {
                  platform: PLATFORM,
                  tag: `op${k}`,
                  onRetry: countRetry,
                },
              );
              const stored = await fetchManifest(
                withTag(directRef(repository), `op${k}`),
                { transport: direct },
              );
              assert.equal(stored.descriptor.digest, seededDigests[image]);
            } else {
              const copies = k % 4 === 1
                ? layouts[1]
                : await freshLayout(`copies-op${k}`);
              await copyImage(
                source,
                await layoutStore(copies),
                `img${image}`,
                {
                  platform: PLATFORM,
                  tag: `op${k}`,
                  onRetry: countRetry,
                },
              );
              const tagged = await copies.tagged(`op${k}`);
              assert.equal(tagged?.digest, seededDigests[image]);
            }
          } else {
            const tags = await listTags(viaProxy("reliability/base"), {
              transport: faulty,
              onRetry: countRetry,
            });
            for (let i = 0; i < 4; i++) assert.ok(tags.includes(`img${i}`));
          }
        } catch (error) {
          if (error instanceof assert.AssertionError) throw error;
          failures.push({ op: `${op} #${k}`, error });
          logs.push(everythingAbout(error));
        }
      };

      let next = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (next < operations) await runOp(next++);
        }),
      );

      // Every failure is a typed error that says which request failed and why.
      for (const { op, error } of failures) {
        assert.ok(
          error instanceof RegistryError ||
            error instanceof DigestMismatchError ||
            error instanceof ManifestError ||
            error instanceof TypeError,
          `${op} failed with an untyped error: ${everythingAbout(error)}`,
        );
        assert.match(String((error as Error).message), /\S{10,}/);
      }

      // Nothing corrupt or partial in the stages or extraction directories.
      let corrupt = 0;
      const problems: string[] = [];
      for (const layout of layouts) {
        for await (const entry of Deno.readDir(`${layout.root}/blobs/sha256`)) {
          const path = `${layout.root}/blobs/sha256/${entry.name}`;
          if (!/^[0-9a-f]{64}$/.test(entry.name)) {
            corrupt++;
            problems.push(`stray file ${path}`);
          } else if (
            (await digestOfFile(path)).digest !== `sha256:${entry.name}`
          ) {
            corrupt++;
            problems.push(`corrupt blob ${path}`);
          }
        }
      }
      for (const { dir, image } of pullDirs) {
        let tree: Map<string, Uint8Array>;
        try {
          tree = await readTree(dir);
        } catch {
          continue; // a pull that failed before extracting anything
        }
        for (const [path, bytes] of tree) {
          const want = expected[image].get(path);
          if (want === undefined || !sameBytes(bytes, want)) {
            corrupt++;
            problems.push(`partial or foreign file ${dir}/${path}`);
          }
        }
      }

      // No secret in any log line, retry event, error message, cause or field.
      const haystack = logs.join("\n");
      const leaked = [password, basic].filter((secret) =>
        haystack.includes(secret)
      ).length;

      const faults = proxy.faults.length;
      const flips = proxy.faults.filter((f) => f.kind === "flip").length;
      const flipFailures = failures.filter((f) =>
        f.error instanceof DigestMismatchError
      ).length;
      await reportSummary("faults", {
        operations,
        faults,
        retries,
        failures: failures.length,
        corrupt,
        leaked,
        extra: {
          requests: proxy.requests,
          flips,
          flipsCaught: mismatchesCaught + flipFailures,
          ...Object.fromEntries(
            ["429", "503", "reset-before", "reset-after", "truncate"].map((
              kind,
            ) => [
              kind,
              proxy.faults.filter((f) => f.kind === kind).length,
            ]),
          ),
          ...Object.fromEntries(
            Object.entries(counts).map(([k, v]) => [`ops.${k}`, v]),
          ),
        },
      });
      for (const { op, error } of failures) {
        console.log(`failed: ${op}: ${(error as Error).stack}`);
      }
      assert.deepEqual(problems, []);
      assert.equal(corrupt, 0);
      assert.equal(leaked, 0);
      assert.ok(
        faults >= operations / 5,
        `only ${faults} faults were injected`,
      );
      assert.ok(
        flips > 0,
        "no byte was flipped: the run did not test verification",
      );
      // Every flipped byte was caught by digest verification (and the blob fetched again).
      assert.equal(mismatchesCaught + flipFailures, flips);
      // Retries make failures rare: at most 2 % of operations may run out of attempts.
      assert.ok(
        failures.length <= operations * 0.02,
        `${failures.length} of ${operations} operations failed`,
      );
    } finally {
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
