/**
 * Pulling an artifact goes through the stage as layers do: its files are copied into the cache
 * (verified, reused by the next pull, started again when a download arrives damaged), then
 * written by title from there; the config and the tagged manifest are staged too.
 */
import assert from "node:assert/strict";
import { parseReference } from "../../src/oci/reference.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { openLayout } from "../../src/store/layout_store.ts";
import { pushArtifact } from "../../src/image/artifact.ts";
import { pullImage } from "../../src/image/pull.ts";
import { createOpener } from "../../src/transport/opener.ts";
import type { Transport } from "../../src/transport/request_body.ts";
import { registryTest } from "../support/registries.ts";
import { registryTransport } from "../support/in_process.ts";

/** Passes requests on, flipping a byte of the first GET of `victim`'s body; logs blob GETs. */
function damagingOnce(
  inner: Transport,
  victim: () => string,
  gets: string[],
): Transport {
  let damaged = false;
  return createOpener({
    transport: async (request) => {
      const response = await inner(request);
      const blob = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(
        new URL(request.url).pathname,
      )?.[1];
      if (request.method !== "GET" || blob === undefined) return response;
      gets.push(blob);
      if (damaged || blob !== victim()) return response;
      damaged = true;
      const bytes = new Uint8Array(await response.arrayBuffer());
      bytes[bytes.byteLength >> 1] ^= 0x40;
      return new Response(bytes, {
        headers: { "content-length": String(bytes.byteLength) },
      });
    },
    credentials: () => Promise.resolve(undefined),
  });
}

registryTest(
  "pullImage() of an artifact stages its files (retried when damaged, reused), then writes them by title",
  async (start) => {
    await using registry = await start();
    const work = await Deno.makeTempDir();
    try {
      await Deno.mkdir(`${work}/in/docs`, { recursive: true });
      const big = "x".repeat(100_000);
      await Deno.writeTextFile(`${work}/in/docs/big.txt`, big);
      await Deno.writeTextFile(`${work}/in/small.txt`, "small");
      const ref = parseReference(`${registry.host}/art:v1`);
      const { manifest } = await pushArtifact(
        remoteStore(ref, { transport: registry.opener }),
        [
          { path: `${work}/in/docs/big.txt`, title: "docs/big.txt" },
          { path: `${work}/in/small.txt` },
        ],
        { artifactType: "application/x.files", tag: "v1" },
      );
      const gets: string[] = [];
      const transport = damagingOnce(
        registry.opener ?? registryTransport,
        () => manifest.layers[0].digest,
        gets,
      );
      const retried: unknown[] = [];
      const result = await pullImage(ref, `${work}/out`, {
        cache: `${work}/stage`,
        transport,
        onRetry: (error) => retried.push(error),
      });
      assert.equal(result.kind, "artifact");
      assert.equal(retried.length, 1, "the damaged download was started again");
      assert.equal(await Deno.readTextFile(`${work}/out/docs/big.txt`), big);
      assert.equal(await Deno.readTextFile(`${work}/out/small.txt`), "small");
      const stage = await openLayout(`${work}/stage`);
      for (const blob of [...manifest.layers, manifest.config]) {
        assert.ok(await stage.exists(blob), `${blob.digest} is staged`);
      }
      assert.equal(
        (await stage.resolve("v1")).digest,
        result.descriptor.digest,
      );
      // A second pull reuses the stage: no blob is downloaded again.
      gets.length = 0;
      await pullImage(ref, `${work}/again`, {
        cache: `${work}/stage`,
        transport,
      });
      assert.deepEqual(gets, []);
      assert.equal(await Deno.readTextFile(`${work}/again/small.txt`), "small");
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
);
