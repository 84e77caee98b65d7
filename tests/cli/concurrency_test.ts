// `pull --concurrency N`: the registry never sees more than N layer downloads at once.
import assert from "node:assert/strict";
import { createRegistry } from "../../src/server/handler.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { hostPlatform } from "../../src/oci/platform.ts";
import { pushTestImage } from "../support/images.ts";
import { pullableImage } from "../support/pullable.ts";
import { runCli } from "../support/cli.ts";

/** The embedded registry holding a 6-layer `app:v1`, counting blob GETs in flight. */
async function countingRegistry() {
  const registry = createRegistry();
  await pushTestImage(
    parseReference("127.0.0.1:5000/app:v1"),
    pullableImage(hostPlatform(), [1000, 2000, 3000, 4000, 5000, 6000]),
    { transport: (request) => registry(request) },
  );
  let inFlight = 0;
  let most = 0;
  let gets = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const blob = request.method === "GET" &&
        new URL(request.url).pathname.includes("/blobs/");
      if (!blob) return await registry(request);
      gets++;
      most = Math.max(most, ++inFlight);
      try {
        // Held a moment so that downloads the client runs together overlap here.
        await new Promise((resolve) => setTimeout(resolve, 150));
        const response = await registry(request);
        return new Response(await response.arrayBuffer(), response);
      } finally {
        inFlight--;
      }
    },
  );
  return {
    host: `127.0.0.1:${server.addr.port}`,
    most: () => most,
    gets: () => gets,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

for (const concurrency of [1, 2]) {
  Deno.test(`CLI: pull --concurrency ${concurrency} downloads at most ${concurrency} layers at once`, async () => {
    await using registry = await countingRegistry();
    const work = await Deno.makeTempDir();
    try {
      const run = await runCli([
        "pull",
        `${registry.host}/app:v1`,
        `${work}/out`,
        "--cache",
        `${work}/cache`,
        "--concurrency",
        String(concurrency),
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(registry.gets(), 7, "the config and 6 layers");
      assert.ok(registry.most() >= 1);
      assert.ok(
        registry.most() <= concurrency,
        `${registry.most()} blob downloads at once`,
      );
      assert.equal((await Deno.stat(`${work}/out/layer-5.bin`)).size, 6000);
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  });
}
