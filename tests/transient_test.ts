import assert from "node:assert/strict";
import {
  isTransientError,
  retryTransient,
} from "../src/transport/transient.ts";
import { RegistryError } from "../src/transport/errors.ts";
import { DigestMismatchError } from "../src/reference/digest.ts";

const status = (code: number, registryCode?: string) =>
  new RegistryError({
    method: "GET",
    url: "http://127.0.0.1:5000/v2/a/blobs/sha256:x",
    status: code,
    codes: registryCode ? [{ code: registryCode, message: "" }] : [],
  });

Deno.test("isTransientError() sorts failures into worth-retrying and not", () => {
  assert.equal(isTransientError(new TypeError("error reading a body")), true);
  assert.equal(
    isTransientError(
      new DigestMismatchError("sha256:" + "0".repeat(64), { size: 1 }),
    ),
    true,
  );
  assert.equal(isTransientError(status(503)), true);
  assert.equal(isTransientError(status(404, "BLOB_UPLOAD_UNKNOWN")), true);
  assert.equal(isTransientError(status(404, "BLOB_UNKNOWN")), false);
  assert.equal(isTransientError(status(401)), false);
  assert.equal(isTransientError(status(403)), false);
  assert.equal(isTransientError(new RangeError("too large")), false);
  const aborted = AbortSignal.abort();
  assert.equal(isTransientError(new TypeError("reset"), aborted), false);
});

Deno.test("retryTransient() gives damaged transfers every attempt and a refusal one more", async () => {
  let calls = 0;
  await assert.rejects(
    retryTransient(() => {
      calls++;
      throw new TypeError("connection reset");
    }),
    TypeError,
  );
  assert.equal(calls, 5);

  calls = 0;
  await assert.rejects(
    retryTransient(() => {
      calls++;
      throw status(503);
    }),
    RegistryError,
  );
  assert.equal(
    calls,
    2,
    "a status that outlasted the opener's retries: one more go",
  );

  calls = 0;
  await assert.rejects(
    retryTransient(() => {
      calls++;
      throw status(403);
    }),
    RegistryError,
  );
  assert.equal(calls, 1);

  const retried: number[] = [];
  const result = await retryTransient((attempt) => {
    if (attempt < 3) throw new TypeError("cut short");
    return Promise.resolve("done");
  }, { onRetry: (_error, attempt) => retried.push(attempt) });
  assert.equal(result, "done");
  assert.deepEqual(retried, [1, 2]);
});
