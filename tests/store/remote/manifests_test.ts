// Bad input from the outside world (issue 7, item 3): config blobs that are not JSON or too large.
import assert from "node:assert/strict";
import { digestOf } from "../../../src/oci/digest.ts";
import { RegistryError } from "../../../src/transport/errors.ts";
import { fetchJsonBlob } from "../../../src/store/remote/manifests.ts";
import {
  assertTyped,
  CONFIG,
  MiB,
  openerOver,
  REF,
} from "../../support/bad_input.ts";

Deno.test("bad input: a config blob that is not JSON or too large gives a RegistryError", async () => {
  const garbage = "not { json";
  const { transport } = openerOver(() => new Response(garbage));
  const descriptor = {
    mediaType: CONFIG.mediaType,
    digest: digestOf(garbage),
    size: garbage.length,
  };
  await assert.rejects(
    fetchJsonBlob(REF, descriptor, { transport }),
    (error) =>
      assertTyped(
        error,
        RegistryError,
        new RegExp(
          `Cannot read blob ${descriptor.digest} of 127\\.0\\.0\\.1:5000/app:v1 as JSON: it is not valid JSON`,
        ),
      ),
  );
  await assert.rejects(
    fetchJsonBlob(REF, { ...descriptor, size: 5 * MiB }, { transport }),
    (error) =>
      assertTyped(
        error,
        RegistryError,
        /its size 5242880 is more than 4194304 bytes/,
      ),
  );
});
