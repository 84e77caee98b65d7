// Attacks of the issue "Safety" on this part of the stack (contract: tests/support/attacks.ts).
//
// Class 7: registries (and token servers) on 127.0.0.1 that accept a request and then stall:
// no headers, headers and a byte of the body, a layer cut off mid-body, an upload never read or
// never answered, a token that never comes, a trickle that stops. Each attack is refused when
// the client gives up with a typed timeout naming the request and the phase that stalled, after
// the configured number of attempts; it worked when the client is still waiting long after.
//
// The module imports nothing the fix added (the error is recognised by its name and fields), so
// that it also runs, and fails, on the code before the fix (`deno test --no-check`).
import type { Attack } from "../support/attacks.ts";
import { createOpener } from "../../src/transport/opener.ts";
import type { Transport } from "../../src/transport/request_body.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { fetchManifest } from "../../src/store/remote/manifests.ts";
import { blobExists } from "../../src/store/remote/blobs.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import { memoryStore } from "../../src/store/memory_store.ts";
import { copyBlobs } from "../../src/image/copy.ts";
import { resolveImage } from "../../src/image/resolve.ts";
import { bytesSource } from "../../src/transport/request_body.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { pullImage } from "../../src/image/pull.ts";
import { OCI_MANIFEST_MEDIA_TYPE } from "../../src/oci/media_types.ts";
import { makeImage } from "../support/images.ts";
import { runCli } from "../support/cli.ts";
import {
  type RawExchange,
  settle,
  stallingServer,
} from "../support/stalling_server.ts";

/** The timeouts the attacks set, in milliseconds: short, so that a refused attack ends soon. */
const TIMEOUT = 300;
/** Attempts the opener makes of each request. */
const ATTEMPTS = 2;

/** An opener with short timeouts and instant retries (the option is new with the fix). */
function stallOpener(): Transport {
  const options = {
    timeouts: { connect: TIMEOUT, headers: TIMEOUT, idle: TIMEOUT },
    retry: { attempts: ATTEMPTS, sleep: () => Promise.resolve() },
    credentials: () => Promise.resolve(undefined),
  };
  return createOpener(options as Parameters<typeof createOpener>[0]);
}

/**
 * Checks that an operation ended with the typed timeout, for the request and phase expected;
 * `url` is the whole redacted URL, or its start when it ends with `?`.
 */
function assertTimedOut(
  error: unknown,
  expected: { phase: string; method: string; url: string },
): void {
  const e = error as {
    name?: string;
    phase?: string;
    method?: string;
    url?: string;
    message?: string;
  } | undefined;
  if (e?.name !== "TimeoutError") {
    throw new Error(
      `expected a TimeoutError (${expected.phase}), got ${
        error === undefined ? "success" : String(error)
      }`,
    );
  }
  const urlMatches = expected.url.endsWith("?")
    ? e.url?.startsWith(expected.url)
    : e.url === expected.url;
  const problems = [
    e.phase !== expected.phase && `phase ${e.phase}, not ${expected.phase}`,
    e.method !== expected.method && `method ${e.method}`,
    !urlMatches && `url ${e.url}, not ${expected.url}`,
    !e.message?.startsWith(`${expected.method} ${e.url}: `) &&
    `the message does not name the request: ${e.message}`,
    !e.message?.includes("timed out") &&
    `the message does not say "timed out": ${e.message}`,
  ].filter(Boolean);
  if (problems.length > 0) {
    throw new Error(
      `the timeout is not reported right: ${problems.join("; ")}`,
    );
  }
}

function assertCount(what: string, actual: number, expected: number): void {
  if (actual !== expected) {
    throw new Error(
      `${what}: ${actual} attempts, expected ${expected} (retried, bounded)`,
    );
  }
}

const MANIFEST_BODY_SIZE = 1000;

/** Headers of a 1,000-byte manifest and its first byte, then nothing. */
async function headersAndOneByte(exchange: RawExchange): Promise<void> {
  await exchange.write(
    `HTTP/1.1 200 OK\r\ncontent-type: ${OCI_MANIFEST_MEDIA_TYPE}\r\n` +
      `content-length: ${MANIFEST_BODY_SIZE}\r\n\r\n{`,
  );
}

/** The issue's attack: `inspect` (resolveImage) kept waiting by a body that stops at byte 1. */
async function manifestBodyStalls(): Promise<void> {
  await using server = stallingServer(headersAndOneByte);
  const ref = parseReference(`${server.host}/app:v1`);
  const transport = stallOpener();
  const error = await settle((signal) =>
    resolveImage(remoteStore(ref, { transport }), "v1", {
      signal,
      attempts: 3,
    })
  );
  assertTimedOut(error, {
    phase: "body",
    method: "GET",
    url: `http://${server.host}/v2/app/manifests/v1`,
  });
  // The resolver reads a body cut off in transit again, three times in all here.
  assertCount("manifest GETs", server.count(/\/manifests\/v1$/, "GET"), 3);
}

/** Accepts the connection, reads the request, never answers. */
async function manifestNoHeaders(): Promise<void> {
  await using server = stallingServer(() => {});
  const ref = parseReference(`${server.host}/app:v1`);
  const transport = stallOpener();
  const error = await settle((signal) =>
    fetchManifest(ref, { transport, signal })
  );
  assertTimedOut(error, {
    phase: "headers",
    method: "GET",
    url: `http://${server.host}/v2/app/manifests/v1`,
  });
  assertCount("manifest GETs", server.count(/\/manifests\/v1$/), ATTEMPTS);
}

/** A HEAD (does the registry have this blob?) that is never answered. */
async function headNeverAnswered(): Promise<void> {
  await using server = stallingServer(() => {});
  const ref = parseReference(`${server.host}/app`);
  const digest = `sha256:${"ab".repeat(32)}`;
  const transport = stallOpener();
  const error = await settle((signal) =>
    blobExists(ref, digest, { transport, signal })
  );
  assertTimedOut(error, {
    phase: "headers",
    method: "HEAD",
    url: `http://${server.host}/v2/app/blobs/${digest}`,
  });
  assertCount("blob HEADs", server.count(/\/blobs\//, "HEAD"), ATTEMPTS);
}

/** `pull`: the manifest and config arrive, the layer stops halfway; nothing is kept. */
async function layerStallsMidBody(): Promise<void> {
  const image = makeImage({ os: "linux", architecture: "amd64" }, [8192]);
  const layer = image.layers[0];
  const manifest = new TextEncoder().encode(JSON.stringify(image.manifest));
  await using server = stallingServer(async (exchange) => {
    const { path } = exchange.request;
    if (path.endsWith("/manifests/v1")) {
      return await exchange.respond(200, manifest, {
        "content-type": OCI_MANIFEST_MEDIA_TYPE,
      });
    }
    if (path.endsWith(`/blobs/${image.config.descriptor.digest}`)) {
      return await exchange.respond(200, image.config.bytes);
    }
    if (path.endsWith(`/blobs/${layer.descriptor.digest}`)) {
      await exchange.write(
        `HTTP/1.1 200 OK\r\ncontent-length: ${layer.bytes.length}\r\n\r\n`,
      );
      return await exchange.write(layer.bytes.subarray(0, 4096));
    }
    await exchange.respond(404);
  });
  const cache = await Deno.makeTempDir();
  const target = await Deno.makeTempDir();
  try {
    const ref = parseReference(`${server.host}/app:v1`);
    const transport = stallOpener();
    const error = await settle((signal) =>
      pullImage(ref, target, { cache, transport, signal, attempts: 2 })
    );
    assertTimedOut(error, {
      phase: "body",
      method: "GET",
      url: `http://${server.host}/v2/app/blobs/${layer.descriptor.digest}`,
    });
    assertCount(
      "layer GETs",
      server.count(new RegExp(`/blobs/${layer.descriptor.digest}$`), "GET"),
      2,
    );
    const hex = layer.descriptor.digest.slice("sha256:".length);
    const kept = await Deno.stat(`${cache}/blobs/sha256/${hex}`).then(
      () => true,
      () => false,
    );
    const extracted = [];
    for await (const entry of Deno.readDir(target)) extracted.push(entry.name);
    if (kept || extracted.length > 0) {
      throw new Error(
        `a stalled layer left files behind: staged ${kept}, extracted [${extracted}]`,
      );
    }
  } finally {
    await Deno.remove(cache, { recursive: true });
    await Deno.remove(target, { recursive: true });
  }
}

/** Answers the blob HEAD (404) and the upload POST (202), then handles the PUT with `put`. */
function uploadRegistry(
  put: (exchange: RawExchange) => Promise<void> | void,
): (exchange: RawExchange) => Promise<void> | void {
  return async (exchange) => {
    const { method, path } = exchange.request;
    if (method === "HEAD") return await exchange.respond(404);
    if (method === "POST" && path.endsWith("/blobs/uploads/")) {
      await exchange.readBody();
      return await exchange.respond(202, "", {
        location: "/v2/app/blobs/uploads/session",
      });
    }
    if (method === "PUT") return await put(exchange);
    await exchange.respond(404);
  };
}

async function pushAgainst(
  put: (exchange: RawExchange) => Promise<void> | void,
  size: number,
  phase: string,
): Promise<void> {
  await using server = stallingServer(uploadRegistry(put));
  const ref = parseReference(`${server.host}/app`);
  const bytes = new Uint8Array(size).fill(7);
  const digest = digestOf(bytes);
  const blob = { mediaType: "application/octet-stream", digest, size };
  const source = memoryStore();
  await source.push(blob, bytesSource(bytes));
  const transport = stallOpener();
  const error = await settle((signal) =>
    copyBlobs(source, remoteStore(ref, { transport }), [blob], {
      signal,
      attempts: 2,
    })
  );
  assertTimedOut(error, {
    phase,
    method: "PUT",
    url: `http://${server.host}/v2/app/blobs/uploads/session?digest=${
      encodeURIComponent(digest)
    }`,
  });
  // Two upload sessions, each PUT sent twice by the opener.
  assertCount("upload PUTs", server.count(/\/uploads\/session/, "PUT"), 4);
}

/** `push`: the registry reads the whole upload and never answers. */
function uploadNeverAnswered(): Promise<void> {
  return pushAgainst(
    async (exchange) => {
      await exchange.readBody();
    },
    64 * 1024,
    "headers",
  );
}

/** `push`: the registry takes the PUT's head and never reads its body. */
function uploadNeverRead(): Promise<void> {
  return pushAgainst(() => {}, 32 << 20, "upload");
}

/** Answers every registry request with a Bearer challenge pointing at `/token` on itself. */
function tokenRegistry(
  token: (exchange: RawExchange) => Promise<void> | void,
): (exchange: RawExchange) => Promise<void> | void {
  return async (exchange) => {
    const { path, headers } = exchange.request;
    if (path.startsWith("/token")) return await token(exchange);
    const host = headers.get("host");
    await exchange.respond(401, "", {
      "www-authenticate":
        `Bearer realm="http://${host}/token",service="registry"`,
    });
  };
}

/** A token server that takes the request and never answers. */
async function tokenNeverAnswered(): Promise<void> {
  await using server = stallingServer(tokenRegistry(() => {}));
  const ref = parseReference(`${server.host}/app:v1`);
  const transport = stallOpener();
  const error = await settle((signal) =>
    fetchManifest(ref, { transport, signal })
  );
  assertTimedOut(error, {
    phase: "headers",
    method: "GET",
    url: `http://${server.host}/token?`,
  });
  assertCount("token requests", server.count(/^\/token/), ATTEMPTS);
}

/** A token server that sends headers and the start of the token, then nothing. */
async function tokenBodyStalls(): Promise<void> {
  await using server = stallingServer(tokenRegistry(async (exchange) => {
    await exchange.write(
      'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{"token":"',
    );
  }));
  const ref = parseReference(`${server.host}/app:v1`);
  const transport = stallOpener();
  const error = await settle((signal) =>
    fetchManifest(ref, { transport, signal })
  );
  assertTimedOut(error, {
    phase: "body",
    method: "GET",
    url: `http://${server.host}/token?`,
  });
  // The opener retries whole responses; a body cut short is the operation's to retry.
  assertCount("token requests", server.count(/^\/token/), 1);
}

/** A byte every 300 ms (a third of the idle timeout: legitimate), then a silence longer than it. */
async function slowLorisThenSilence(): Promise<void> {
  const TRICKLE = 4;
  const IDLE = 900;
  const outcomes: string[] = [];
  await using server = stallingServer(async (exchange) => {
    await exchange.write(
      `HTTP/1.1 200 OK\r\ncontent-type: ${OCI_MANIFEST_MEDIA_TYPE}\r\n` +
        `content-length: ${MANIFEST_BODY_SIZE}\r\n\r\n`,
    );
    try {
      for (let i = 0; i < TRICKLE; i++) {
        await exchange.write(" ");
        await new Promise((resolve) => setTimeout(resolve, IDLE / 3));
      }
    } catch {
      outcomes.push("cut during the trickle");
      return;
    }
    // Now silent: wait for the client to give up and close.
    await exchange.conn.read(new Uint8Array(16)).catch(() => null);
    outcomes.push("closed after the trickle");
  });
  const ref = parseReference(`${server.host}/app:v1`);
  const options = {
    timeouts: { idle: IDLE },
    retry: { attempts: ATTEMPTS, sleep: () => Promise.resolve() },
    credentials: () => Promise.resolve(undefined),
  };
  const transport = createOpener(
    options as Parameters<typeof createOpener>[0],
  );
  const error = await settle((signal) =>
    resolveImage(remoteStore(ref, { transport }), "v1", {
      signal,
      attempts: 3,
    })
  );
  assertTimedOut(error, {
    phase: "body",
    method: "GET",
    url: `http://${server.host}/v2/app/manifests/v1`,
  });
  await server.close();
  if (outcomes.some((o) => o !== "closed after the trickle")) {
    throw new Error(
      `a legitimate trickle was cut short: ${outcomes.join(", ")}`,
    );
  }
  assertCount("manifest GETs", server.count(/\/manifests\/v1$/), 3);
}

/** The CLI: `oci inspect --timeout 0.5` against the issue's registry fails, naming the request. */
async function cliInspectStalls(): Promise<void> {
  await using server = stallingServer(headersAndOneByte);
  const run = await runCli(
    ["inspect", `${server.host}/app:v1`, "--timeout", "0.5"],
    { kill: { signal: "SIGKILL", delay: 30_000 } },
  );
  const url = `http://${server.host}/v2/app/manifests/v1`;
  if (
    run.code !== 1 || !run.stderr.includes("timed out") ||
    !run.stderr.includes(`GET ${url}`)
  ) {
    throw new Error(
      `oci inspect against a stalled registry: exit ${run.code}${
        run.signal ? ` (killed by ${run.signal})` : ""
      }, stderr: ${run.stderr.trim()}`,
    );
  }
}

/** The attacks this module contributes to tests/reliability/attacks_test.ts. */
export const attacks: Attack[] = [
  {
    class: 7,
    name:
      "headers and 1 byte of a 1,000-byte manifest, then silence (resolveImage, as inspect)",
    attempt: manifestBodyStalls,
  },
  {
    class: 7,
    name: "accepts the connection, never sends headers (manifest GET)",
    attempt: manifestNoHeaders,
  },
  {
    class: 7,
    name: "never answers a blob HEAD",
    attempt: headNeverAnswered,
  },
  {
    class: 7,
    name: "layer blob stalls halfway (pull); nothing staged or extracted",
    attempt: layerStallsMidBody,
  },
  {
    class: 7,
    name: "reads the whole upload, never answers the PUT (push)",
    attempt: uploadNeverAnswered,
  },
  {
    class: 7,
    name: "never reads a 32 MiB upload body (push)",
    attempt: uploadNeverRead,
  },
  {
    class: 7,
    name: "token endpoint never answers",
    attempt: tokenNeverAnswered,
  },
  {
    class: 7,
    name: "token endpoint sends headers and half a token, then silence",
    attempt: tokenBodyStalls,
  },
  {
    class: 7,
    name:
      "slow-loris trickle within the idle timeout, then one silent interval",
    attempt: slowLorisThenSilence,
  },
  {
    class: 7,
    name: "oci inspect --timeout 0.5 against headers and 1 byte, then silence",
    attempt: cliInspectStalls,
  },
];
