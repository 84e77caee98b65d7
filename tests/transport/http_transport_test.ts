import assert from "node:assert/strict";
import {
  createHttpTransport,
  httpTransport,
} from "../../src/transport/http_transport.ts";
import {
  bytesSource,
  createRequest,
  fileSource,
} from "../../src/transport/request_body.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { TimeoutError } from "../../src/transport/errors.ts";
import { concatBytes, createBufferFiller } from "../../src/io/bytes.ts";
import {
  type RawExchange,
  stallingServer,
} from "../support/stalling_server.ts";

/** A server that records the headers and size of every request body it gets. */
function recordingServer() {
  const seen: { headers: Headers; size: number; digest: string }[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const body = new Uint8Array(await request.arrayBuffer());
      seen.push({
        headers: request.headers,
        size: body.byteLength,
        digest: digestOf(body),
      });
      return new Response(null, {
        status: 201,
        headers: { "docker-content-digest": digestOf(body) },
      });
    },
  );
  return { server, seen, url: `http://127.0.0.1:${server.addr.port}` };
}

Deno.test("httpTransport() sends Content-Length, not chunked, for a streamed file upload", async () => {
  const { server, seen, url } = recordingServer();
  await using _ = server;
  const path = await Deno.makeTempFile();
  const bytes = new Uint8Array(5 << 20).map((_, i) => i % 253);
  await Deno.writeFile(path, bytes);
  const response = await httpTransport(
    createRequest(`${url}/v2/app/blobs/uploads/1`, {
      method: "PUT",
      body: await fileSource(path),
    }),
  );
  assert.equal(response.status, 201);
  assert.equal(response.headers.get("docker-content-digest"), digestOf(bytes));
  assert.equal(response.url, `${url}/v2/app/blobs/uploads/1`);
  assert.equal(seen[0].headers.get("content-length"), String(bytes.byteLength));
  assert.equal(seen[0].headers.get("transfer-encoding"), null);
  assert.equal(seen[0].digest, digestOf(bytes));
  await Deno.remove(path);
});

Deno.test("httpTransport() sends Content-Length: 0 for an empty upload", async () => {
  const { server, seen, url } = recordingServer();
  await using _ = server;
  const response = await httpTransport(
    createRequest(`${url}/v2/app/blobs/uploads/`, {
      method: "POST",
      body: bytesSource(""),
    }),
  );
  assert.equal(response.status, 201);
  assert.equal(seen[0].headers.get("content-length"), "0");
  assert.equal(seen[0].headers.get("transfer-encoding"), null);
});

Deno.test("plain fetch of a stream body is chunked: the reason httpTransport exists", async () => {
  const { server, seen, url } = recordingServer();
  await using _ = server;
  const response = await fetch(`${url}/x`, {
    method: "PUT",
    body: bytesSource("abc").open(),
    headers: { "content-length": "3" },
  });
  await response.body?.cancel();
  // If a future Deno keeps Content-Length on streams, this test says the workaround can go.
  assert.equal(seen[0].headers.get("transfer-encoding"), "chunked");
});

Deno.test("httpTransport() refuses a source longer than its declared size", async () => {
  const { server, url } = recordingServer();
  await using _ = server;
  const lying = {
    size: 2,
    open: () => bytesSource("abcdef").open(),
  };
  await assert.rejects(
    httpTransport(createRequest(`${url}/x`, { method: "PUT", body: lying })),
    /longer than its declared size 2/,
  );
});

Deno.test("httpTransport() returns redirects without following them", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      new Response(null, { status: 307, headers: { location: "/elsewhere" } }),
  );
  const response = await httpTransport(
    new Request(`http://127.0.0.1:${server.addr.port}/a`),
  );
  assert.equal(response.status, 307);
  assert.equal(response.headers.get("location"), "/elsewhere");
});

Deno.test("httpTransport() keeps HEAD bodies empty on an upload (a request with a body)", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("x", { status: 200 }),
  );
  const response = await httpTransport(
    createRequest(`http://127.0.0.1:${server.addr.port}/a`, {
      method: "PUT",
      body: "abc",
    }),
  );
  assert.equal(await response.text(), "x");
});

// Timeouts: hostile servers on raw TCP (tests/support/stalling_server.ts), short timeouts.

const SHORT = { connect: 300, headers: 300, idle: 300 };

/** Headers of a `size`-byte body and its first `sent` bytes, then nothing. */
function partialBody(size: number, sent: number) {
  return async (exchange: RawExchange) => {
    await exchange.readBody();
    await exchange.write(`HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`);
    await exchange.write(new Uint8Array(sent).fill(120));
  };
}

async function timeoutOf(
  promise: Promise<unknown>,
): Promise<TimeoutError> {
  const error = await promise.then(() => undefined, (e) => e);
  assert.ok(
    error instanceof TimeoutError,
    `expected a TimeoutError, got ${error}`,
  );
  return error;
}

for (
  const [path, makeRequest] of [
    [
      "GET",
      (url: string, signal?: AbortSignal) => new Request(url, { signal }),
    ],
    [
      "PUT with a body",
      (url: string, signal?: AbortSignal) =>
        createRequest(url, { method: "PUT", body: "abc", signal }),
    ],
  ] as const
) {
  Deno.test(`createHttpTransport() (${path}): headers, 1 byte of 1,000, then silence fails the body read`, async () => {
    let closed = false;
    await using server = stallingServer(async (exchange) => {
      await partialBody(1000, 1)(exchange);
      closed = await exchange.conn.read(new Uint8Array(1)).catch(() => null) ===
        null;
    });
    const transport = createHttpTransport({ timeouts: SHORT });
    const url = `http://${server.host}/v2/app/manifests/v1?token=s3cret`;
    const response = await transport(makeRequest(url));
    assert.equal(response.status, 200);
    assert.equal(response.url, url);
    const error = await timeoutOf(response.arrayBuffer());
    assert.equal(error.phase, "body");
    assert.equal(error.timeout, 300);
    assert.equal(
      error.message,
      `${
        makeRequest(url).method
      } http://${server.host}/v2/app/manifests/v1?token=REDACTED: timed out after 0.3 s waiting for more of the response body`,
    );
    await server.close();
    assert.ok(closed, "the stalled request was not cancelled");
  });

  Deno.test(`createHttpTransport() (${path}): no headers after the request fails with phase headers`, async () => {
    await using server = stallingServer(async (exchange) => {
      await exchange.readBody();
    });
    const transport = createHttpTransport({ timeouts: SHORT });
    const error = await timeoutOf(
      transport(makeRequest(`http://${server.host}/v2/`)),
    );
    assert.equal(error.phase, "headers");
    assert.match(
      error.message,
      /timed out after 0\.3 s waiting for the response headers/,
    );
  });

  Deno.test(`createHttpTransport() (${path}): a trickle within the idle timeout is read whole`, async () => {
    const size = 6;
    await using server = stallingServer(async (exchange) => {
      await exchange.readBody();
      await exchange.write(
        `HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`,
      );
      for (let i = 0; i < size; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        await exchange.write("z");
      }
    });
    const transport = createHttpTransport({ timeouts: { idle: 600 } });
    const response = await transport(makeRequest(`http://${server.host}/slow`));
    assert.equal(await response.text(), "zzzzzz");
  });

  Deno.test(`createHttpTransport() (${path}): a slow reader is not a stalled server`, async () => {
    await using server = stallingServer((exchange) =>
      exchange.readBody().then(() => exchange.respond(200, "whole body"))
    );
    const transport = createHttpTransport({ timeouts: { idle: 100 } });
    const response = await transport(makeRequest(`http://${server.host}/`));
    // The reader takes its time before reading: the timer runs only while a read waits.
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(await response.text(), "whole body");
  });

  Deno.test(`createHttpTransport() (${path}): the caller's signal still aborts, before and after headers`, async () => {
    await using server = stallingServer(partialBody(1000, 1));
    const transport = createHttpTransport({
      timeouts: { headers: 60_000, idle: 60_000 },
    });
    const url = `http://${server.host}/v2/`;
    const early = new AbortController();
    await using silent = stallingServer(() => {});
    const waiting = transport(
      makeRequest(`http://${silent.host}/`, early.signal),
    );
    early.abort(new RangeError("caller stopped"));
    await assert.rejects(waiting, /caller stopped/);
    const late = new AbortController();
    const response = await transport(
      makeRequest(url, late.signal),
    );
    const reading = response.arrayBuffer();
    late.abort(new RangeError("caller stopped reading"));
    await assert.rejects(reading, /caller stopped reading/);
  });
}

Deno.test("createHttpTransport() : a server that never reads the upload fails with phase upload", async () => {
  await using server = stallingServer(() => {});
  const transport = createHttpTransport({ timeouts: SHORT });
  const error = await timeoutOf(transport(
    createRequest(`http://${server.host}/v2/app/blobs/uploads/1`, {
      method: "PUT",
      body: bytesSource(new Uint8Array(32 << 20)),
    }),
  ));
  assert.equal(error.phase, "upload");
  assert.equal(error.method, "PUT");
  assert.match(
    error.message,
    /waiting for the server to read the request body/,
  );
});

Deno.test("createHttpTransport() : a server that reads the upload and never answers fails with phase headers", async () => {
  await using server = stallingServer(async (exchange) => {
    await exchange.readBody();
  });
  const transport = createHttpTransport({ timeouts: SHORT });
  const error = await timeoutOf(transport(
    createRequest(`http://${server.host}/v2/app/blobs/uploads/1`, {
      method: "PUT",
      body: bytesSource(new Uint8Array(1 << 20)),
    }),
  ));
  assert.equal(error.phase, "headers");
});

Deno.test("createHttpTransport() : a HEAD that is never answered fails with phase headers", async () => {
  await using server = stallingServer(() => {});
  const transport = createHttpTransport({ timeouts: SHORT });
  const error = await timeoutOf(
    transport(
      new Request(`http://${server.host}/v2/a/blobs/x`, { method: "HEAD" }),
    ),
  );
  assert.equal(error.method, "HEAD");
  assert.equal(error.phase, "headers");
});

Deno.test("createHttpTransport() keeps byte-stream bodies readable with BYOB, byte for byte", async () => {
  const bytes = new Uint8Array(5 << 20).map((_, i) => (i * 7) % 251);
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(bytes),
  );
  const transport = createHttpTransport({ timeouts: SHORT });
  const response = await transport(
    new Request(`http://127.0.0.1:${server.addr.port}/blob`),
  );
  const filler = createBufferFiller(response.body!);
  const chunks: Uint8Array[] = [];
  let buffer = new ArrayBuffer(1 << 20);
  for (;;) {
    const chunk = await filler.fill(new Uint8Array(buffer));
    if (chunk.byteLength === 0) break;
    chunks.push(chunk.slice());
    buffer = chunk.buffer;
  }
  assert.equal(digestOf(concatBytes(chunks)), digestOf(bytes));
});

Deno.test("createHttpTransport() refuses a negative timeout", () => {
  assert.throws(
    () => createHttpTransport({ timeouts: { idle: -1 } }),
    RangeError,
  );
});
