import assert from "node:assert/strict";
import { describeRetry, withRetry } from "../../src/transport/retry.ts";
import type { RetryEvent } from "../../src/transport/retry.ts";
import {
  bytesSource,
  createRequest,
  fileSource,
} from "../../src/transport/request_body.ts";
import {
  ensureStatus,
  RegistryError,
  RetryAfterError,
  TimeoutError,
} from "../../src/transport/errors.ts";
import { NetworkError } from "../../src/transport/network_errors.ts";
import { createOpener } from "../../src/transport/opener.ts";
import {
  isTransientError,
  retryTransient,
} from "../../src/transport/transient.ts";
import {
  createHttpTransport,
  httpTransport,
} from "../../src/transport/http_transport.ts";
import { stallingServer } from "../support/stalling_server.ts";
import { digestOf } from "../../src/oci/digest.ts";

/** A server on 127.0.0.1 that answers from a script of responses, recording what it got. */
function scriptedServer(
  script: (attempt: number, request: Request, body: Uint8Array) => Response,
) {
  const seen: { method: string; body: Uint8Array; headers: Headers }[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const body = new Uint8Array(await request.arrayBuffer());
      seen.push({ method: request.method, body, headers: request.headers });
      return script(seen.length, request, body);
    },
  );
  return { server, seen, url: `http://127.0.0.1:${server.addr.port}` };
}

function recordingPolicy() {
  const sleeps: number[] = [];
  const events: RetryEvent[] = [];
  return {
    sleeps,
    events,
    policy: {
      sleep: (ms: number) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
      onRetry: (event: RetryEvent) => events.push(event),
      random: () => 0.5,
      now: () => Date.parse("2026-01-01T00:00:00Z"),
    },
  };
}

Deno.test("withRetry() honours Retry-After in seconds and as an HTTP date", async () => {
  const { server, seen, url } = scriptedServer((n) =>
    n === 1
      ? new Response("slow down", {
        status: 429,
        headers: { "retry-after": "7" },
      })
      : n === 2
      ? new Response(null, {
        status: 503,
        headers: { "retry-after": "Thu, 01 Jan 2026 00:00:03 GMT" },
      })
      : new Response("ok")
  );
  await using _ = server;
  const { policy, sleeps, events } = recordingPolicy();
  const response = await withRetry(httpTransport, policy)(
    new Request(`${url}/v2/`),
  );
  assert.equal(await response.text(), "ok");
  assert.equal(seen.length, 3);
  assert.deepEqual(sleeps, [7000, 3000]);
  assert.deepEqual(events.map((e) => [e.attempt, e.status]), [[1, 429], [
    2,
    503,
  ]]);
});

Deno.test("withRetry() caps Retry-After at maxDelay", async () => {
  const { server, url } = scriptedServer((n) =>
    n === 1
      ? new Response(null, { status: 503, headers: { "retry-after": "50" } })
      : new Response("ok")
  );
  await using _ = server;
  const { policy, sleeps } = recordingPolicy();
  const response = await withRetry(httpTransport, {
    ...policy,
    maxDelay: 2000,
  })(
    new Request(`${url}/v2/`),
  );
  await response.body?.cancel();
  assert.deepEqual(sleeps, [2000]);
});

Deno.test("withRetry() backs off exponentially with full jitter", async () => {
  const { server, seen, url } = scriptedServer(() =>
    new Response(null, { status: 502 })
  );
  await using _ = server;
  const { policy, sleeps } = recordingPolicy();
  const response = await withRetry(httpTransport, {
    ...policy,
    attempts: 6,
    baseDelay: 100,
    maxDelay: 1000,
    random: () => 0.999,
  })(new Request(`${url}/v2/`));
  assert.equal(response.status, 502);
  assert.equal(seen.length, 6);
  assert.deepEqual(sleeps, [99, 199, 399, 799, 999]);
});

Deno.test("withRetry() gives up after the limit with the last error", async () => {
  const { server, seen, url } = scriptedServer((n) =>
    Response.json({
      errors: [{ code: "UNAVAILABLE", message: `attempt ${n}` }],
    }, {
      status: 503,
    })
  );
  await using _ = server;
  const { policy } = recordingPolicy();
  const request = new Request(`${url}/v2/app/manifests/v1`);
  const response = await withRetry(httpTransport, { ...policy, attempts: 3 })(
    request,
  );
  assert.equal(seen.length, 3);
  await assert.rejects(
    ensureStatus(request, response, 200),
    (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.status, 503);
      assert.match(error.message, /attempt 3/);
      return true;
    },
  );
});

Deno.test("withRetry() rethrows the last network error unchanged", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const { policy, events } = recordingPolicy();
  await assert.rejects(
    withRetry(httpTransport, { ...policy, attempts: 3 })(
      new Request(`http://127.0.0.1:${port}/v2/`),
    ),
    TypeError,
  );
  assert.equal(events.length, 2);
  assert.ok(events.every((e) => e.error !== undefined));
});

for (const status of [400, 401, 403, 404, 405, 416]) {
  Deno.test(`withRetry() does not retry ${status}`, async () => {
    const { server, seen, url } = scriptedServer(() =>
      new Response("no", { status })
    );
    await using _ = server;
    const { policy, events } = recordingPolicy();
    const response = await withRetry(httpTransport, policy)(
      new Request(`${url}/v2/x/blobs/y`),
    );
    assert.equal(response.status, status);
    await response.body?.cancel();
    assert.equal(seen.length, 1);
    assert.equal(events.length, 0);
  });
}

Deno.test("withRetry() replays an upload body byte for byte from its source", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/blob`;
  const bytes = new Uint8Array(3 << 20).map((_, i) => (i * 7919) % 251);
  await Deno.writeFile(path, bytes);
  const { server, seen, url } = scriptedServer((n) =>
    n < 3
      ? new Response(null, { status: 500 })
      : new Response(null, { status: 201 })
  );
  await using _ = server;
  const { policy } = recordingPolicy();
  const request = createRequest(
    `${url}/v2/app/blobs/uploads/x?digest=${digestOf(bytes)}`,
    {
      method: "PUT",
      body: await fileSource(path),
    },
  );
  const response = await withRetry(httpTransport, policy)(request);
  assert.equal(response.status, 201);
  assert.equal(seen.length, 3);
  for (const attempt of seen) {
    assert.equal(attempt.body.byteLength, bytes.byteLength);
    assert.equal(digestOf(attempt.body), digestOf(bytes));
    assert.equal(
      attempt.headers.get("content-length"),
      String(bytes.byteLength),
    );
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("withRetry() sends a one-shot stream body once and returns the failure", async () => {
  const { server, seen, url } = scriptedServer(() =>
    new Response(null, { status: 503 })
  );
  await using _ = server;
  const { policy, events } = recordingPolicy();
  const response = await withRetry(httpTransport, policy)(
    new Request(`${url}/upload`, {
      method: "PUT",
      body: new Response("abc").body,
    }),
  );
  assert.equal(response.status, 503);
  assert.equal(seen.length, 1);
  assert.equal(events.length, 0);
});

Deno.test("withRetry() stops waiting when the request is aborted", async () => {
  const controller = new AbortController();
  const transport = withRetry(
    () =>
      Promise.resolve(
        new Response(null, { status: 503, headers: { "retry-after": "30" } }),
      ),
  );
  const pending = transport(
    new Request("http://r/v2/", { signal: controller.signal }),
  );
  controller.abort(new Error("user cancelled"));
  await assert.rejects(pending, /user cancelled/);
});

Deno.test("withRetry() retries a stalled request (TimeoutError) like a dropped connection", async () => {
  const { policy, events } = recordingPolicy();
  let calls = 0;
  const stalling = (request: Request) => {
    calls++;
    if (calls < 3) {
      return Promise.reject(
        new TimeoutError({
          method: request.method,
          url: request.url,
          phase: "headers",
          timeout: 300,
        }),
      );
    }
    return Promise.resolve(new Response("ok"));
  };
  const transport = withRetry(stalling, policy);
  const response = await transport(new Request("http://127.0.0.1:5000/v2/"));
  assert.equal(await response.text(), "ok");
  assert.equal(calls, 3);
  assert.ok(events.every((e) => e.error instanceof TimeoutError));
});

Deno.test("withRetry() over createHttpTransport(): a registry that never answers is tried the configured number of times", async () => {
  await using server = stallingServer(() => {});
  const { policy, events } = recordingPolicy();
  const transport = withRetry(
    createHttpTransport({ timeouts: { headers: 200 } }),
    { ...policy, attempts: 3 },
  );
  const error = await transport(
    new Request(`http://${server.host}/v2/app/manifests/v1`),
  ).then(() => undefined, (e) => e);
  assert.ok(error instanceof TimeoutError, `got ${error}`);
  assert.equal(error.phase, "headers");
  assert.equal(server.requests.length, 3);
  assert.equal(events.length, 2);
});

Deno.test("withRetry() over createHttpTransport(): a stalled upload is replayed from its source", async () => {
  let attempt = 0;
  await using server = stallingServer(async (exchange) => {
    const body = await exchange.readBody();
    // The first attempt is read and never answered; the second is answered.
    if (++attempt === 1) return;
    await exchange.respond(201, "", {
      "docker-content-digest": digestOf(body),
    });
  });
  const bytes = new Uint8Array(3 << 20).map((_, i) => i % 241);
  const { policy } = recordingPolicy();
  const transport = withRetry(
    createHttpTransport({ timeouts: { headers: 200 } }),
    policy,
  );
  const response = await transport(
    createRequest(`http://${server.host}/v2/app/blobs/uploads/1`, {
      method: "PUT",
      body: bytesSource(bytes),
    }),
  );
  assert.equal(response.status, 201);
  assert.equal(response.headers.get("docker-content-digest"), digestOf(bytes));
  assert.equal(server.count(/uploads/, "PUT"), 2);
});

/** A 429 as a rate-limited registry sends it, with a Retry-After. */
function rateLimited(retryAfter: string): Response {
  return Response.json({
    errors: [{ code: "TOOMANYREQUESTS", message: "rate limit exceeded" }],
  }, {
    status: 429,
    statusText: "Too Many Requests",
    headers: { "retry-after": retryAfter },
  });
}

Deno.test("withRetry(): a Retry-After longer than maxRetryAfter fails at once, saying when to come back (seconds and HTTP date)", async () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  for (
    const retryAfter of ["7200", new Date(now + 7_200_000).toUTCString()]
  ) {
    const { server, seen, url } = scriptedServer(() => rateLimited(retryAfter));
    await using _ = server;
    const { policy, sleeps, events } = recordingPolicy();
    const error = await withRetry(httpTransport, policy)(
      new Request(`${url}/v2/app/manifests/v1`),
    ).then(() => undefined, (e) => e);
    assert.ok(error instanceof RetryAfterError, `${retryAfter}: ${error}`);
    assert.ok(error instanceof RegistryError);
    assert.equal(seen.length, 1, "not sent again");
    assert.deepEqual(sleeps, [], "no silent wait");
    assert.equal(events.length, 0);
    assert.equal(error.status, 429);
    assert.ok(error.hasCode("TOOMANYREQUESTS"));
    assert.equal(error.retryAt.toISOString(), "2026-01-01T02:00:00.000Z");
    assert.equal(error.wait, 7_200_000);
    assert.equal(
      error.message,
      `GET ${url}/v2/app/manifests/v1: 429 Too Many Requests: the registry asks to wait 7200 s (Retry-After), longer than the 60 s retries wait at most: try again after 2026-01-01T02:00:00Z (in 7200 s): TOOMANYREQUESTS: rate limit exceeded`,
    );
    assert.equal(isTransientError(error), false, "operations do not retry it");
  }
});

Deno.test("withRetry(): a Retry-After within maxRetryAfter is waited for; maxRetryAfter moves the cap; with one attempt a long one still says when", async () => {
  const { server, seen, url } = scriptedServer((n) =>
    n === 1 || n === 3
      ? rateLimited("45")
      : n === 4
      ? rateLimited("7200")
      : new Response("ok")
  );
  await using _ = server;
  const { policy, sleeps } = recordingPolicy();
  const response = await withRetry(httpTransport, {
    ...policy,
    maxDelay: 60_000,
  })(new Request(`${url}/v2/`));
  assert.equal(await response.text(), "ok");
  assert.deepEqual(sleeps, [45_000]);
  assert.equal(seen.length, 2);

  const strict = await withRetry(httpTransport, {
    ...policy,
    maxRetryAfter: 10_000,
  })(new Request(`${url}/v2/`)).then(() => undefined, (e) => e);
  assert.ok(strict instanceof RetryAfterError, String(strict));
  assert.match(strict.message, /longer than the 10 s retries wait at most/);

  const once = await withRetry(httpTransport, { ...policy, attempts: 1 })(
    new Request(`${url}/v2/`),
  ).then(() => undefined, (e) => e);
  assert.ok(once instanceof RetryAfterError, String(once));
  assert.match(once.message, /try again after \S+Z \(in 7200 s\)/);
  assert.equal(seen.length, 4);
});

Deno.test("withRetry(): onRetry tells the attempt, the attempts in all, the wait and what failed; describeRetry makes one line of it", async () => {
  const { server, url } = scriptedServer((n) =>
    n < 3
      ? new Response(null, { status: 503, statusText: "Service Unavailable" })
      : new Response("ok")
  );
  await using _ = server;
  const { policy, events } = recordingPolicy();
  const response = await withRetry(httpTransport, { ...policy, attempts: 4 })(
    new Request(`${url}/v2/app/tags/list?token=s3cr3t`),
  );
  await response.body?.cancel();
  assert.deepEqual(
    events.map((e) => [e.attempt, e.attempts, e.status, e.statusText]),
    [[1, 4, 503, "Service Unavailable"], [2, 4, 503, "Service Unavailable"]],
  );
  assert.equal(
    describeRetry(events[0]),
    `GET ${url}/v2/app/tags/list?token=REDACTED: 503 Service Unavailable; retrying in 0.3 s (attempt 2/4)`,
  );
  const refused = new NetworkError({
    method: "GET",
    url: `${url}/v2/`,
    kind: "refused",
    detail: "tcp connect error: Connection refused (os error 111)",
  });
  assert.equal(
    describeRetry({
      request: new Request(`${url}/v2/`),
      attempt: 2,
      attempts: 5,
      delay: 12_400,
      error: refused,
    }),
    `GET ${url}/v2/: connection refused: tcp connect error: Connection refused (os error 111); retrying in 12 s (attempt 3/5)`,
  );
  assert.equal(
    describeRetry({
      request: new Request(`${url}/v2/`),
      attempt: 1,
      attempts: 2,
      delay: 50,
      error: new TypeError("something odd"),
    }),
    `GET ${url}/v2/: something odd; retrying in 0.1 s (attempt 2/2)`,
  );
});

Deno.test("createOpener(): the retry policy's onRetry hears every retry of the opener, token requests included", async () => {
  let calls = 0;
  const events: { url: string; status?: number }[] = [];
  const open = createOpener({
    transport: () =>
      Promise.resolve(
        new Response(null, { status: ++calls < 3 ? 502 : 200 }),
      ),
    credentials: () => Promise.resolve(undefined),
    retry: {
      sleep: () => Promise.resolve(),
      onRetry: (e) => events.push({ url: e.request.url, status: e.status }),
    },
  });
  const response = await open(new Request("http://127.0.0.1:5000/v2/"));
  assert.equal(response.status, 200);
  assert.deepEqual(events, [
    { url: "http://127.0.0.1:5000/v2/", status: 502 },
    { url: "http://127.0.0.1:5000/v2/", status: 502 },
  ]);
});

Deno.test("withRetry(): a NetworkError that retrying cannot fix is thrown at once", async () => {
  let calls = 0;
  const { policy, events } = recordingPolicy();
  const error = await withRetry(() => {
    calls++;
    return Promise.reject(
      new NetworkError({
        method: "GET",
        url: "https://nonexistent.invalid/v2/",
        kind: "dns",
      }),
    );
  }, policy)(new Request("https://nonexistent.invalid/v2/")).then(
    () => undefined,
    (e) => e,
  );
  assert.ok(error instanceof NetworkError);
  assert.equal(calls, 1);
  assert.equal(events.length, 0);
});

Deno.test("retryTransient(): onRetry gets the attempts in all; a RetryAfterError is not started again", async () => {
  const seen: [number, number][] = [];
  const result = await retryTransient((attempt) => {
    if (attempt < 3) throw new TypeError("error reading a body");
    return Promise.resolve("done");
  }, {
    attempts: 4,
    onRetry: (_e, attempt, attempts) => seen.push([attempt, attempts]),
  });
  assert.equal(result, "done");
  assert.deepEqual(seen, [[1, 4], [2, 4]]);

  let tries = 0;
  const limited = new RetryAfterError({
    method: "GET",
    url: "http://127.0.0.1:5000/v2/",
    status: 429,
    retryAt: new Date(0),
    wait: 3_600_000,
    maxWait: 60_000,
  });
  await assert.rejects(
    retryTransient(() => {
      tries++;
      return Promise.reject(limited);
    }),
    RetryAfterError,
  );
  assert.equal(tries, 1);
});
