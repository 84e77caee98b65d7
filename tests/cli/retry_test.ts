// Retries are visible and bounded, and push checks the registry before packing: the real `oci`
// process against the embedded registry behind a handler that fails as told (503s, rate limits
// with Retry-After in seconds and as an HTTP date, auth that refuses pushes).
import assert from "node:assert/strict";
import { join } from "node:path";
import { createRegistry } from "../../src/server/handler.ts";
import { serveRegistry } from "../../src/server/serve.ts";
import { hashPassword } from "../../src/server/auth.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { checkPushAccess } from "../../src/image/push.ts";
import { RegistryError } from "../../src/transport/errors.ts";
import { makeImage, pushTestImage } from "../support/images.ts";
import { runCli } from "../support/cli.ts";
import { listFilesIfAny } from "../support/files.ts";
import { freePort } from "../../peers/available.ts";

/** What the handler saw. */
interface Seen {
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

/**
 * The embedded registry on 127.0.0.1, holding `app:v1`, with `fail` answering first when it
 * returns a response (the nth request of that path, from 1).
 */
async function flakyRegistry(
  fail: (request: Request, nth: number) => Response | undefined = () =>
    undefined,
) {
  const registry = createRegistry();
  const ref = parseReference("127.0.0.1:5000/app:v1");
  await pushTestImage(
    ref,
    makeImage({ os: "linux", architecture: "amd64" }, [64]),
    {
      transport: (request) => registry(request),
    },
  );
  const seen: Seen[] = [];
  const counts = new Map<string, number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const path = new URL(request.url).pathname;
      const nth = (counts.get(path) ?? 0) + 1;
      counts.set(path, nth);
      const response = fail(request, nth) ?? await registry(request);
      seen.push({ method: request.method, path, status: response.status });
      return response;
    },
  );
  const host = `127.0.0.1:${server.addr.port}`;
  return {
    host,
    seen,
    count: (path: string) => seen.filter((s) => s.path === path).length,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

const TAGS = "/v2/app/tags/list";

function unavailable(): Response {
  return new Response("busy", {
    status: 503,
    statusText: "Service Unavailable",
  });
}

function rateLimited(retryAfter: string): Response {
  return Response.json({
    errors: [{ code: "TOOMANYREQUESTS", message: "rate limit exceeded" }],
  }, {
    status: 429,
    statusText: "Too Many Requests",
    headers: { "retry-after": retryAfter },
  });
}

function retryLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => /retrying in/.test(line));
}

Deno.test("CLI: each retry prints one line on stderr, without --verbose: what failed, the wait, the attempt", async () => {
  await using registry = await flakyRegistry((request, nth) =>
    new URL(request.url).pathname === TAGS && nth <= 2
      ? unavailable()
      : undefined
  );
  const run = await runCli(["tags", `${registry.host}/app`]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.trim(), "v1");
  const lines = retryLines(run.stderr);
  assert.equal(lines.length, 2, run.stderr);
  for (const [i, line] of lines.entries()) {
    assert.match(
      line,
      new RegExp(
        `^oci: GET http://${registry.host}${TAGS}: 503 Service Unavailable; retrying in \\d+\\.\\d s \\(attempt ${
          i + 2
        }/5\\)$`,
      ),
    );
  }
  assert.equal(registry.count(TAGS), 3);
});

Deno.test("CLI: --quiet prints no retry lines (errors only)", async () => {
  await using registry = await flakyRegistry((request, nth) =>
    new URL(request.url).pathname === TAGS && nth <= 1
      ? unavailable()
      : undefined
  );
  const run = await runCli(["tags", `${registry.host}/app`, "--quiet"]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, "");
  assert.equal(registry.count(TAGS), 2);
});

Deno.test("CLI: --retries 0 sends once and fails with the status; --retries 2 tries three times in a row", async () => {
  await using registry = await flakyRegistry((request) =>
    new URL(request.url).pathname === TAGS ? unavailable() : undefined
  );
  const none = await runCli(["tags", `${registry.host}/app`, "--retries", "0"]);
  assert.equal(none.code, 1);
  assert.equal(registry.count(TAGS), 1, "no retry at any level");
  assert.deepEqual(retryLines(none.stderr), []);
  assert.match(
    none.stderr,
    new RegExp(
      `^oci: GET http://${registry.host}${TAGS}: 503 Service Unavailable`,
    ),
  );

  const two = await runCli(["tags", `${registry.host}/app`, "--retries", "2"]);
  assert.equal(two.code, 1);
  const lines = retryLines(two.stderr);
  assert.match(lines[0], /\(attempt 2\/3\)$/);
  assert.match(lines[1], /\(attempt 3\/3\)$/);
});

Deno.test("CLI: --retries takes a whole number, 0 or more", async () => {
  for (const value of ["-1", "1.5", "many", ""]) {
    const run = await runCli(["tags", "127.0.0.1:1/app", `--retries=${value}`]);
    assert.equal(run.code, 2, `${value}: ${run.stderr}`);
    assert.match(run.stderr, /--retries must be a whole number/);
  }
});

Deno.test("CLI: a Retry-After longer than the cap fails at once, saying when to come back, in seconds and as an HTTP date", async () => {
  const later = new Date(Date.now() + 3 * 3600_000);
  for (const retryAfter of ["7200", later.toUTCString()]) {
    await using registry = await flakyRegistry((request) =>
      new URL(request.url).pathname === TAGS
        ? rateLimited(retryAfter)
        : undefined
    );
    const started = performance.now();
    const run = await runCli(["tags", `${registry.host}/app`]);
    const seconds = (performance.now() - started) / 1000;
    assert.equal(run.code, 1, run.stderr);
    assert.equal(registry.count(TAGS), 1, `${retryAfter}: sent once`);
    assert.deepEqual(retryLines(run.stderr), []);
    assert.match(
      run.stderr,
      new RegExp(
        `^oci: GET http://${registry.host}${TAGS}: 429 Too Many Requests: the registry asks to wait \\d+ s \\(Retry-After\\), longer than the 60 s retries wait at most: try again after \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ \\(in \\d+ s\\): TOOMANYREQUESTS: rate limit exceeded\\n$`,
      ),
    );
    if (retryAfter === "7200") assert.match(run.stderr, /\(in 7200 s\)/);
    else {
      const comeBack = /try again after (\S+Z)/.exec(run.stderr)![1];
      assert.equal(comeBack, later.toISOString().replace(/\.\d{3}Z$/, "Z"));
    }
    assert.ok(seconds < 20, `failed at once (${seconds.toFixed(1)} s)`);
  }
});

Deno.test("CLI: a short Retry-After is waited for, and its line says so", async () => {
  await using registry = await flakyRegistry((request, nth) =>
    new URL(request.url).pathname === TAGS && nth === 1
      ? rateLimited("1")
      : undefined
  );
  const run = await runCli(["tags", `${registry.host}/app`]);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(retryLines(run.stderr), [
    `oci: GET http://${registry.host}${TAGS}: 429 Too Many Requests; retrying in 1.0 s (attempt 2/5)`,
  ]);
});

// --- push checks the registry before packing ---------------------------------------------

async function tempDirWithFile(): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(join(dir, "prefix"));
  await Deno.writeTextFile(join(dir, "prefix", "hello.txt"), "hello");
  return dir;
}

Deno.test("CLI push: a wrong host or a closed port fails before anything is packed", async () => {
  const dir = await tempDirWithFile();
  try {
    const targets = [
      [
        "nonexistent.invalid/app:v1",
        /^oci: GET https:\/\/nonexistent\.invalid\/v2\/: DNS name not found: /,
      ],
      [
        `127.0.0.1:${freePort()}/app:v1`,
        /^oci: GET http:\/\/127\.0\.0\.1:\d+\/v2\/: connection refused: /,
      ],
    ] as const;
    for (const [target, message] of targets) {
      const cache = join(dir, "stage");
      const run = await runCli([
        "push",
        join(dir, "prefix"),
        target,
        "--cache",
        cache,
        "--retries",
        "0",
      ]);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, message);
      assert.doesNotMatch(run.stderr, /Packed/);
      assert.deepEqual(await listFilesIfAny(cache), [], "nothing packed");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI push: a registry that refuses the push fails before anything is packed", async () => {
  await using registry = await serveRegistry({
    auth: {
      users: { alice: await hashPassword("wonderland", 1000) },
      token: { anonymousPull: true },
    },
  });
  const dir = await tempDirWithFile();
  try {
    const cache = join(dir, "stage");
    const run = await runCli([
      "push",
      join(dir, "prefix"),
      `${registry.host}/app:v1`,
      "--cache",
      cache,
    ], { env: { DOCKER_CONFIG: dir, HOME: dir } });
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(`POST http://${registry.host}/v2/app/blobs/uploads/`),
    );
    assert.doesNotMatch(run.stderr, /Packed/);
    assert.deepEqual(await listFilesIfAny(cache), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI push: the check starts an upload session and cancels it, then the push goes on", async () => {
  await using registry = await flakyRegistry();
  const dir = await tempDirWithFile();
  try {
    const run = await runCli([
      "push",
      join(dir, "prefix"),
      `${registry.host}/app:v2`,
      "--cache",
      join(dir, "stage"),
    ]);
    assert.equal(run.code, 0, run.stderr);
    const first = registry.seen.slice(0, 3).map((s) =>
      `${s.method} ${s.path.replace(/uploads\/.+$/, "uploads/ID")} ${s.status}`
    );
    assert.deepEqual(first, [
      "GET /v2/ 200",
      "POST /v2/app/blobs/uploads/ 202",
      "DELETE /v2/app/blobs/uploads/ID 204",
    ]);
    assert.ok(
      registry.seen.some((s) =>
        s.method === "PUT" && s.path === "/v2/app/manifests/v2"
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkPushAccess(): not a registry, or push denied, is a RegistryError naming the request", async () => {
  const ref = parseReference("127.0.0.1:5000/app:v1");
  const notRegistry = await checkPushAccess(ref, {
    transport: () => Promise.resolve(new Response("<html>", { status: 404 })),
  }).then(() => undefined, (e) => e);
  assert.ok(notRegistry instanceof RegistryError);
  assert.match(
    notRegistry.message,
    /^GET http:\/\/127\.0\.0\.1:5000\/v2\/: 404/,
  );

  const registry = createRegistry();
  const readOnly = await checkPushAccess(ref, {
    transport: (request) =>
      request.method === "POST"
        ? Promise.resolve(
          Response.json({
            errors: [{
              code: "DENIED",
              message: "requested access to the resource is denied",
            }],
          }, { status: 403 }),
        )
        : registry(request),
  }).then(() => undefined, (e) => e);
  assert.ok(readOnly instanceof RegistryError);
  assert.equal(readOnly.status, 403);
  assert.match(
    readOnly.message,
    /^POST http:\/\/127\.0\.0\.1:5000\/v2\/app\/blobs\/uploads\/: 403.*DENIED/,
  );
});
