// Clients against the embedded registry injecting seeded faults: retries and digest checks keep
// the results right.
import assert from "node:assert/strict";
import { createRegistry } from "../src/server/handler.ts";
import { parseReference } from "../src/oci/reference.ts";
import { createOpener } from "../src/transport/opener.ts";
import { pullImage } from "../src/image/pull.ts";
import { pushImage } from "../src/image/push.ts";
import { createLayer } from "../src/layer/create_layer.ts";
import { openLayout } from "../src/store/layout_store.ts";
import { digestOf } from "../src/oci/digest.ts";
import { withFaults } from "./support/faults.ts";

Deno.test("injected faults are seeded: the same seed gives the same faults", async () => {
  const run = async () => {
    const faults: string[] = [];
    const registry = withFaults(createRegistry(), {
      rate: 0.5,
      seed: 42,
      kinds: ["429", "503"],
      onFault: (kind) => faults.push(kind),
    });
    const statuses = [];
    for (let i = 0; i < 20; i++) {
      const response = await registry(new Request("http://r.test/v2/"));
      statuses.push(response.status);
      await response.body?.cancel();
    }
    return { statuses, faults };
  };
  const first = await run();
  assert.deepEqual(await run(), first);
  assert.ok(
    first.faults.length > 3 && first.faults.length < 17,
    `${first.faults.length} faults`,
  );
  assert.ok(first.statuses.includes(429) && first.statuses.includes(503));
});

Deno.test("a pull through a registry that flips, truncates and refuses still gets the right files", async () => {
  const work = await Deno.makeTempDir({ prefix: "oci-faults-" });
  const faults: string[] = [];
  await using handler = createRegistry();
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    withFaults(handler, {
      rate: 0.4,
      seed: 1,
      kinds: ["429", "503", "truncate", "flip"],
      onFault: (kind) => faults.push(kind),
    }),
  );
  try {
    await Deno.mkdir(`${work}/src`);
    for (let i = 0; i < 6; i++) {
      await Deno.writeFile(
        `${work}/src/file${i}`,
        crypto.getRandomValues(new Uint8Array(50_000)),
      );
    }
    const stage = await openLayout(`${work}/stage`);
    const layers = [];
    for (let i = 0; i < 6; i++) {
      layers.push(await createLayer(`${work}/src/file${i}`, stage));
    }
    const retries: number[] = [];
    const transport = createOpener({
      credentials: () => Promise.resolve(undefined),
      retry: {
        sleep: () => Promise.resolve(),
        onRetry: (e) => retries.push(e.attempt),
        attempts: 8,
      },
    });
    const ref = parseReference(`127.0.0.1:${server.addr.port}/faulty/app:v1`);
    await pushImage(ref, {
      layers,
      transport,
      platform: { os: "linux", architecture: "amd64" },
    });
    await pullImage(ref, `${work}/out`, {
      transport,
      cache: `${work}/cache`,
      platform: { os: "linux", architecture: "amd64" },
    });
    for (let i = 0; i < 6; i++) {
      assert.equal(
        digestOf(await Deno.readFile(`${work}/out/file${i}`)),
        digestOf(await Deno.readFile(`${work}/src/file${i}`)),
      );
    }
    assert.ok(
      faults.includes("flip") && faults.includes("truncate"),
      `faults: ${faults}`,
    );
    assert.ok(retries.length > 0, "the opener retried");
    const leftovers = [];
    for await (const e of Deno.readDir(`${work}/cache/blobs/sha256`)) {
      if (e.name.includes(".tmp")) leftovers.push(e.name);
    }
    assert.deepEqual(leftovers, []);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
