import assert from "node:assert/strict";
import {
  createWatchdog,
  DEFAULT_TIMEOUTS,
  idleTimeoutBody,
  resolveTimeouts,
} from "../../src/transport/timeouts.ts";
import type { TimeoutPhase } from "../../src/transport/errors.ts";

/** The timers under test are unref'd: something must keep the event loop alive meanwhile. */
async function keepingAlive<T>(work: () => Promise<T>): Promise<T> {
  const alive = setInterval(() => {}, 1000);
  try {
    return await work();
  } finally {
    clearInterval(alive);
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A body that sends `chunks` and then stays silent, telling when it is cancelled and why. */
function silentAfter(chunks: Uint8Array[], bytes: boolean) {
  const cancelled = Promise.withResolvers<unknown>();
  const stream = new ReadableStream<Uint8Array>({
    ...(bytes ? { type: "bytes" as const } : {}),
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
    },
    cancel(reason) {
      cancelled.resolve(reason);
    },
  });
  return { stream, cancelled: cancelled.promise };
}

Deno.test("resolveTimeouts() fills defaults, keeps 0 and Infinity, refuses negatives and NaN", () => {
  assert.deepEqual(resolveTimeouts(), DEFAULT_TIMEOUTS);
  assert.deepEqual(resolveTimeouts({ connect: 0, idle: Infinity }), {
    connect: 0,
    headers: DEFAULT_TIMEOUTS.headers,
    idle: Infinity,
  });
  assert.throws(() => resolveTimeouts({ headers: -5 }), /headers timeout/);
  assert.throws(() => resolveTimeouts({ idle: NaN }), RangeError);
});

Deno.test("createWatchdog(): re-arming replaces the phase, disarming stops it, 0 arms nothing", async () => {
  const stalls: [TimeoutPhase, number][] = [];
  const watchdog = createWatchdog((phase, ms) => stalls.push([phase, ms]));
  await keepingAlive(async () => {
    watchdog.arm("connect", 30);
    watchdog.arm("upload", 60);
    await delay(150);
    watchdog.arm("headers", 30);
    watchdog.disarm();
    watchdog.arm("body", 0);
    await delay(100);
  });
  assert.deepEqual(stalls, [["upload", 60]]);
});

for (const bytes of [true, false]) {
  const kind = bytes ? "byte stream" : "default stream";

  Deno.test(`idleTimeoutBody() (${kind}): a silent body errors with onStall's error and is cancelled`, async () => {
    const { stream, cancelled } = silentAfter([new Uint8Array([1, 2])], bytes);
    const stalled = new Error("stalled");
    let stalls = 0;
    const body = idleTimeoutBody(stream, {
      idle: 50,
      onStall: () => {
        stalls++;
        return stalled;
      },
    });
    const reader = body.getReader();
    assert.deepEqual((await reader.read()).value, new Uint8Array([1, 2]));
    await keepingAlive(() =>
      assert.rejects(reader.read(), (e) => e === stalled)
    );
    assert.equal(await cancelled, stalled);
    assert.equal(stalls, 1);
  });

  Deno.test(`idleTimeoutBody() (${kind}): time between reads does not count`, async () => {
    const { stream } = silentAfter([new Uint8Array([1])], bytes);
    const body = idleTimeoutBody(stream, {
      idle: 30,
      onStall: () => new Error("stalled"),
    });
    const reader = body.getReader();
    await keepingAlive(() => delay(120));
    assert.deepEqual((await reader.read()).value, new Uint8Array([1]));
    await reader.cancel();
  });

  Deno.test(`idleTimeoutBody() (${kind}): a cancel while a read waits stops the timer`, async () => {
    const { stream, cancelled } = silentAfter([], bytes);
    let stalls = 0;
    const body = idleTimeoutBody(stream, {
      idle: 40,
      onStall: () => ++stalls,
    });
    const reader = body.getReader();
    const pending = reader.read();
    await reader.cancel("done reading");
    assert.equal(await cancelled, "done reading");
    assert.equal((await pending).done, true);
    await keepingAlive(() => delay(100));
    assert.equal(stalls, 0);
  });

  Deno.test(`idleTimeoutBody() (${kind}): a failed read after the caller aborted fails with the caller's reason`, async () => {
    const controller = new AbortController();
    const stream = new ReadableStream<Uint8Array>({
      ...(bytes ? { type: "bytes" as const } : {}),
      pull(c) {
        controller.abort(new RangeError("caller stopped"));
        c.error(new Error("aborted"));
      },
    });
    const body = idleTimeoutBody(stream, {
      idle: 10_000,
      onStall: () => new Error("stalled"),
      signal: controller.signal,
    });
    await assert.rejects(new Response(body).arrayBuffer(), /caller stopped/);
  });
}

Deno.test("idleTimeoutBody(): a byte stream stays one, BYOB reads fill the reader's own buffer", async () => {
  const { stream } = silentAfter([new Uint8Array([5, 6, 7])], true);
  const body = idleTimeoutBody(stream, {
    idle: 1000,
    onStall: () => new Error("stalled"),
  });
  const reader = body.getReader({ mode: "byob" });
  const buffer = new ArrayBuffer(8);
  const { value } = await reader.read(new Uint8Array(buffer, 2, 4));
  assert.deepEqual(value, new Uint8Array([5, 6, 7]));
  assert.equal(value!.byteOffset, 2);
  assert.equal(value!.buffer.byteLength, 8);
  await reader.cancel();
});

Deno.test("idleTimeoutBody(): with no timeout the body is returned as it is", () => {
  const { stream } = silentAfter([], false);
  const onStall = () => new Error("stalled");
  assert.equal(idleTimeoutBody(stream, { idle: 0, onStall }), stream);
  assert.equal(idleTimeoutBody(stream, { idle: Infinity, onStall }), stream);
});
