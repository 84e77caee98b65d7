import assert from "node:assert/strict";
import {
  isNetworkError,
  isTransientError,
  retryTransient,
} from "../../src/transport/transient.ts";
import {
  RegistryError,
  TimeoutError,
  type TimeoutPhase,
} from "../../src/transport/errors.ts";
import { DigestMismatchError } from "../../src/oci/digest.ts";

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

const stall = (phase: TimeoutPhase) =>
  new TimeoutError({
    method: "GET",
    url: "http://127.0.0.1:5000/v2/a/blobs/sha256:x",
    phase,
    timeout: 500,
  });

Deno.test("isNetworkError() and isTransientError(): a stall in any phase is worth retrying, unless aborted", () => {
  for (const phase of ["connect", "headers", "upload", "body"] as const) {
    assert.equal(isNetworkError(stall(phase)), true);
    assert.equal(isTransientError(stall(phase)), true);
  }
  const controller = new AbortController();
  controller.abort();
  assert.equal(isTransientError(stall("body"), controller.signal), false);
});

Deno.test("retryTransient() gives a stalled transfer every attempt (not the one more go of a refusal)", async () => {
  let calls = 0;
  const error = await retryTransient(() => {
    calls++;
    return Promise.reject(stall("body"));
  }, { attempts: 4 }).then(() => undefined, (e) => e);
  assert.ok(error instanceof TimeoutError);
  assert.equal(calls, 4);
});

Deno.test("TimeoutError names the request, with its URL redacted, and the phase", () => {
  const error = new TimeoutError({
    method: "PUT",
    url:
      "https://user:pw@127.0.0.1:5000/v2/a/blobs/uploads/1?X-Amz-Signature=abc&digest=sha256:1",
    phase: "upload",
    timeout: 30_000,
  });
  assert.equal(error.name, "TimeoutError");
  assert.equal(
    error.url,
    "https://REDACTED@127.0.0.1:5000/v2/a/blobs/uploads/1?X-Amz-Signature=REDACTED&digest=sha256:1",
  );
  assert.equal(
    error.message,
    `PUT ${error.url}: timed out after 30 s waiting for the server to read the request body`,
  );
  assert.doesNotMatch(error.message, /pw|abc/);
});
