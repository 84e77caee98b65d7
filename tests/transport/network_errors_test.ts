// Network failures name the method, the URL and the cause, through the library and the CLI: a
// name that does not resolve, a port where nothing listens, certificates refused (untrusted,
// expired, for another host), a server that stays silent, a connection closed mid-response.
// What retrying cannot fix is not retried.
import assert from "node:assert/strict";
import { createOpener } from "../../src/transport/opener.ts";
import {
  NetworkError,
  networkErrorOf,
  withNetworkErrors,
} from "../../src/transport/network_errors.ts";
import { TimeoutError } from "../../src/transport/errors.ts";
import {
  isNetworkError,
  isTransientError,
} from "../../src/transport/transient.ts";
import type { RetryEvent } from "../../src/transport/retry.ts";
import type { Transport } from "../../src/transport/request_body.ts";
import { createHttpTransport } from "../../src/transport/http_transport.ts";
import { makeTestTls, serveHttps, type TestTls } from "../support/tls.ts";
import { stallingServer } from "../support/stalling_server.ts";
import { runCli } from "../support/cli.ts";
import { freePort, requirePeer } from "../../peers/available.ts";

/** An opener that does not sleep between retries and records them. */
function recordingOpener(transport?: Transport, attempts = 3) {
  const retries: RetryEvent[] = [];
  const open = createOpener({
    transport,
    credentials: () => Promise.resolve(undefined),
    retry: {
      attempts,
      sleep: () => Promise.resolve(),
      onRetry: (event) => retries.push(event),
    },
  });
  return { open, retries };
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a failure");
}

function assertNamed(error: Error, method: string, url: string, cause: RegExp) {
  assert.ok(
    error.message.startsWith(`${method} ${url}: `),
    `the message names ${method} ${url}: ${error.message}`,
  );
  assert.match(error.message, cause);
}

// --- what the runtime throws, read into kinds -------------------------------------------------

/** `node:http`'s coded errors, wrapped as the upload path wraps them today. */
function nodeFailure(code: string, message: string): TypeError {
  const cause = Object.assign(new Error(message), { code });
  return new TypeError(`Cannot send PUT http://r.example/v2/a: ${message}`, {
    cause,
  });
}

Deno.test("networkErrorOf() reads node:http's codes: DNS, refused, reset, pipe, certificates", () => {
  const request = new Request(
    "https://r.example/v2/a/blobs/uploads/1?sig=s3cr3t",
    {
      method: "PUT",
    },
  );
  const cases: [string, string, string, boolean][] = [
    ["ENOTFOUND", "getaddrinfo ENOTFOUND r.example", "dns", false],
    ["EAI_AGAIN", "getaddrinfo EAI_AGAIN r.example", "dns", true],
    ["ECONNREFUSED", "connect ECONNREFUSED 10.0.0.1:443", "refused", true],
    ["ECONNRESET", "socket hang up", "reset", true],
    ["EPIPE", "write EPIPE", "reset", true],
    ["ETIMEDOUT", "connect ETIMEDOUT 10.0.0.1:443", "timeout", true],
    ["EHOSTUNREACH", "connect EHOSTUNREACH 10.0.0.1:443", "unreachable", true],
    ["CERT_HAS_EXPIRED", "certificate has expired", "tls", false],
    [
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      "unable to verify the first certificate",
      "tls",
      false,
    ],
    ["DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate", "tls", false],
    [
      "SELF_SIGNED_CERT_IN_CHAIN",
      "self-signed certificate in chain",
      "tls",
      false,
    ],
    [
      "ERR_TLS_CERT_ALTNAME_INVALID",
      "Hostname/IP does not match certificate's altnames",
      "tls",
      false,
    ],
  ];
  for (const [code, message, kind, retryable] of cases) {
    const error = networkErrorOf(request, nodeFailure(code, message));
    assert.ok(error instanceof NetworkError, code);
    assert.equal(error.kind, kind, code);
    assert.equal(error.retryable, retryable, code);
    assert.equal(isNetworkError(error), retryable, code);
    assert.equal(isTransientError(error), retryable, code);
    assertNamed(
      error,
      "PUT",
      "https://r.example/v2/a/blobs/uploads/1?sig=REDACTED",
      new RegExp(code),
    );
    assert.ok(error.message.includes(message), error.message);
    assert.ok(!error.message.includes("s3cr3t"));
  }
});

Deno.test("networkErrorOf() reads Deno's fetch failures and leaves aborts, bugs and timeouts alone", () => {
  const request = new Request("http://127.0.0.1:5000/v2/");
  const fetchFailure = (text: string) =>
    new TypeError("fetch failed", {
      cause: new Error(
        `error sending request for url (http://127.0.0.1:5000/v2/?token=s3cr3t): client error (Connect): ${text}`,
      ),
    });
  const cases: [string, string, boolean][] = [
    [
      "dns error: failed to lookup address information: Name or service not known",
      "dns",
      false,
    ],
    [
      "dns error: failed to lookup address information: Temporary failure in name resolution",
      "dns",
      true,
    ],
    ["tcp connect error: Connection refused (os error 111)", "refused", true],
    ["invalid peer certificate: UnknownIssuer", "tls", false],
    ["invalid peer certificate: Expired", "tls", false],
    [
      "tcp connect error: Network is unreachable (os error 101)",
      "unreachable",
      true,
    ],
    ["tcp connect error: Connection timed out (os error 110)", "timeout", true],
  ];
  for (const [text, kind, retryable] of cases) {
    const error = networkErrorOf(request, fetchFailure(text)) as NetworkError;
    assert.equal(error.kind, kind, text);
    assert.equal(error.retryable, retryable, text);
    assert.equal(error.message.includes(text), true, error.message);
    assert.ok(!error.message.includes("s3cr3t"), error.message);
    assert.ok(!error.message.includes("error sending request"), error.message);
    assert.ok(
      !Deno.inspect(error).includes("s3cr3t"),
      "the cause chain is redacted too",
    );
  }
  const blocked = networkErrorOf(
    request,
    new TypeError("Fetch failed: Requests to port 1 are blocked"),
  ) as NetworkError;
  assert.equal(blocked.kind, "blocked");
  assert.equal(blocked.retryable, false);

  assert.equal(
    networkErrorOf(request, new DOMException("stop", "AbortError")),
    undefined,
  );
  assert.equal(
    networkErrorOf(request, new TypeError("x is not a function")),
    undefined,
    "a bug is not a network error",
  );
  assert.equal(networkErrorOf(request, new RangeError("too long")), undefined);
  const stalled = new TimeoutError({
    method: "GET",
    url: request.url,
    phase: "headers",
    timeout: 100,
  });
  assert.equal(networkErrorOf(request, stalled), stalled);
});

// --- through the library, against real sockets ---------------------------------------------

Deno.test("library: a port where nothing listens is 'connection refused', naming the request, and retried", async () => {
  const url = `http://127.0.0.1:${freePort()}/v2/app/manifests/v1`;
  const { open, retries } = recordingOpener();
  const error = await failure(open(new Request(url)));
  assert.ok(error instanceof NetworkError, String(error));
  assert.equal(error.kind, "refused");
  assertNamed(error, "GET", url, /connection refused: .*Connection refused/);
  assert.equal(retries.length, 2, "refused is worth retrying");
});

Deno.test("library: a name that does not resolve is 'DNS name not found' and not retried", async () => {
  // The test runner may reach only loopback: the lookup runs in a child allowed that one name.
  const opener = new URL("../../src/transport/opener.ts", import.meta.url).href;
  const code = `
    import { createOpener } from ${JSON.stringify(opener)};
    let retries = 0;
    const open = createOpener({
      credentials: () => Promise.resolve(undefined),
      retry: { sleep: () => Promise.resolve(), onRetry: () => retries++ },
    });
    try {
      await open(new Request("https://nonexistent.invalid/v2/app/tags/list"));
    } catch (error) {
      console.log(JSON.stringify({ name: error.name, kind: error.kind, message: error.message, retries }));
    }`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", code],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.ok(text, new TextDecoder().decode(out.stderr));
  const result = JSON.parse(text);
  assert.equal(result.name, "NetworkError");
  assert.equal(result.kind, "dns");
  assert.equal(result.retries, 0);
  assert.match(
    result.message,
    /^GET https:\/\/nonexistent\.invalid\/v2\/app\/tags\/list: DNS name not found: /,
  );
  assert.match(result.message, /failed to lookup address/);
});

/** Each certificate a client must refuse, and the words that say why. */
const REFUSED_CERTIFICATES = [
  [
    "untrustedServer",
    /UnknownIssuer \(the certificate's issuer is not trusted\)/,
  ],
  ["expiredServer", /Expired \(the certificate has expired\)/],
  [
    "wrongHostServer",
    /not valid for name.*wrong-host\.invalid.*\(the certificate is for another host name\)/,
  ],
] as const;

Deno.test({
  name:
    "library: refused certificates (untrusted, expired, another host) are TLS errors with the reason, not retried",
  ...requirePeer("openssl"),
  async fn() {
    await using tls = await makeTestTls();
    using client = Deno.createHttpClient({ caCerts: [tls.ca.cert] });
    // fetch trusting the test's CA, so that expired and wrong-host are told from unknown.
    const trusting: Transport = (request) =>
      fetch(request, { client, redirect: "manual" });
    for (const [certificate, reason] of REFUSED_CERTIFICATES) {
      await using server = serveHttps(() => new Response("{}"), {
        certificate: tls[certificate],
      });
      const url = `${server.url}/v2/app/manifests/v1`;
      const { open, retries } = recordingOpener(trusting);
      const error = await failure(open(new Request(url)));
      assert.ok(error instanceof NetworkError, `${certificate}: ${error}`);
      assert.equal(error.kind, "tls", certificate);
      assertNamed(
        error,
        "GET",
        url,
        /TLS certificate error: invalid peer certificate: /,
      );
      assert.match(error.message, reason, certificate);
      assert.equal(retries.length, 0, `${certificate} is not retried`);
    }
  },
});

Deno.test("library: a server that never answers is a TimeoutError naming the request and the phase", async () => {
  await using server = stallingServer(() => {});
  const url = `http://${server.host}/v2/app/manifests/v1`;
  const { open, retries } = recordingOpener(
    createHttpTransport({ timeouts: { headers: 200 } }),
    2,
  );
  const error = await failure(open(new Request(url)));
  assert.ok(error instanceof TimeoutError, String(error));
  assertNamed(
    error,
    "GET",
    url,
    /timed out after 0\.2 s waiting for the response headers/,
  );
  assert.equal(retries.length, 1, "a stall is worth retrying");
});

/** Closes the connection part-way: in the response head, or in the body. */
function closingServer(where: "head" | "body") {
  return stallingServer(async (exchange) => {
    await exchange.write(
      where === "head"
        ? "HTTP/1.1 200 OK\r\ncontent-le"
        : 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"a":',
    );
    exchange.conn.close();
  });
}

Deno.test("library: a connection closed in the response head is 'connection reset or closed', and retried", async () => {
  await using server = closingServer("head");
  const url = `http://${server.host}/v2/app/manifests/v1`;
  const { open, retries } = recordingOpener();
  const error = await failure(open(new Request(url)));
  assert.ok(error instanceof NetworkError, String(error));
  assert.equal(error.kind, "reset");
  assertNamed(
    error,
    "GET",
    url,
    /connection reset or closed: the connection closed in the middle of the response head/,
  );
  assert.equal(retries.length, 2);
});

Deno.test("library: a connection closed in the body fails the read with a NetworkError naming the request", async () => {
  await using server = closingServer("body");
  const url = `http://${server.host}/v2/app/manifests/v1`;
  const { open } = recordingOpener();
  const response = await open(new Request(url));
  const error = await failure(response.text());
  assert.ok(error instanceof NetworkError, String(error));
  assert.equal(error.kind, "reset");
  assert.equal(error.retryable, true);
  assertNamed(
    error,
    "GET",
    url,
    /connection reset or closed: the connection closed after 5 of the body.s 1000 bytes/,
  );
});

Deno.test("withNetworkErrors() keeps byte streams BYOB-readable and bodies whole", async () => {
  const bytes = new Uint8Array(300_000).map((_, i) => i * 7);
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(bytes),
  );
  const transport = withNetworkErrors(createHttpTransport());
  const response = await transport(
    new Request(`http://127.0.0.1:${server.addr.port}/blob`),
  );
  const reader = response.body!.getReader({ mode: "byob" });
  const received: number[] = [];
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read(new Uint8Array(65536));
    if (done) break;
    received.push(value.byteLength);
    total += value.byteLength;
  }
  assert.equal(total, bytes.byteLength);
  // Wrapping twice (the CLI's layer and the opener's) adds no second layer.
  const once = await transport(
    new Request(`http://127.0.0.1:${server.addr.port}/blob`),
  );
  const twice = withNetworkErrors(() => Promise.resolve(once));
  assert.equal(await twice(new Request("http://127.0.0.1/blob")), once);
  assert.deepEqual(new Uint8Array(await once.arrayBuffer()), bytes);
});

// --- through the CLI -----------------------------------------------------------------------

async function cli(args: string[], env?: Record<string, string>) {
  const run = await runCli(args, { env });
  assert.equal(run.code, 1, `exit 1: ${run.stderr}`);
  const lines = run.stderr.trim().split("\n");
  return { run, last: lines[lines.length - 1], lines };
}

Deno.test("CLI: a wrong host fails at once, naming the URL and 'DNS name not found' (no retries)", async () => {
  const { last, lines } = await cli(["inspect", "nonexistent.invalid/app:v1"]);
  assert.match(
    last,
    /^oci: GET https:\/\/nonexistent\.invalid\/v2\/app\/manifests\/v1: DNS name not found: .*failed to lookup address/,
  );
  assert.equal(lines.filter((l) => /retrying/.test(l)).length, 0);
});

Deno.test("CLI: a closed port is 'connection refused', naming the URL, with one line per retry", async () => {
  const url = `http://127.0.0.1:${freePort()}/v2/app/manifests/v1`;
  const { last, lines } = await cli([
    "inspect",
    `${new URL(url).host}/app:v1`,
    "--retries",
    "1",
  ]);
  assert.ok(
    last.startsWith(`oci: GET ${url}: connection refused: `),
    last,
  );
  assert.match(last, /Connection refused/);
  assert.equal(
    lines.filter((l) => /retrying in .* \(attempt 2\/2\)$/.test(l)).length,
    1,
  );
});

Deno.test({
  name:
    "CLI: refused certificates name the URL and the reason (DENO_CERT trusts the test CA), not retried",
  ...requirePeer("openssl"),
  async fn() {
    await using tls: TestTls = await makeTestTls();
    for (const [certificate, reason] of REFUSED_CERTIFICATES) {
      await using server = serveHttps(() => new Response("{}"), {
        certificate: tls[certificate],
      });
      const { last, lines } = await cli(
        ["inspect", `oci://${server.host}/app:v1`],
        { DENO_CERT: tls.ca.certPath },
      );
      assert.ok(
        last.startsWith(
          `oci: GET ${server.url}/v2/app/manifests/v1: TLS certificate error: `,
        ),
        `${certificate}: ${last}`,
      );
      assert.match(last, reason, certificate);
      assert.equal(lines.filter((l) => /retrying/.test(l)).length, 0);
    }
  },
});

Deno.test("CLI: a registry that never answers times out, naming the URL and the phase", async () => {
  await using server = stallingServer(() => {});
  const { last } = await cli([
    "inspect",
    `${server.host}/app:v1`,
    "--timeout",
    "0.3",
    "--retries",
    "0",
  ]);
  assert.equal(
    last,
    `oci: GET http://${server.host}/v2/app/manifests/v1: timed out after 0.3 s waiting for the response headers`,
  );
});

Deno.test("CLI: a connection closed mid-response names the URL and 'connection reset or closed'", async () => {
  for (const where of ["head", "body"] as const) {
    await using server = closingServer(where);
    const { last } = await cli([
      "inspect",
      `${server.host}/app:v1`,
      "--retries",
      "0",
    ]);
    assert.match(
      last,
      new RegExp(
        `^oci: GET http://${server.host}/v2/app/manifests/v1: connection reset or closed: `,
      ),
      where,
    );
  }
});
