// `--json` of every command, through the real CLI against the embedded registry: one object
// on stdout with one vocabulary on success, {"error": {message, code, status, url}} on failure
// with the exit status unchanged.
import assert from "node:assert/strict";
import { serveRegistry } from "../../src/server/serve.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { makeImage, pushTestIndex } from "../support/images.ts";
import { type CliRun, runCli } from "../support/cli.ts";

type Kind =
  | "string"
  | "number"
  | "digest"
  | "object"
  | "array"
  | "platform"
  | "platforms"
  | "count"
  | "string|null"
  | "number|null";

/** Checks that `value` has exactly these keys (the optional ones may be missing), of these kinds. */
function assertShape(
  value: Record<string, unknown>,
  required: Record<string, Kind>,
  optional: Record<string, Kind> = {},
  context = "",
): void {
  const all = { ...required, ...optional };
  for (const key of Object.keys(value)) {
    assert.ok(key in all, `${context}: unexpected key "${key}"`);
  }
  for (const [key, kind] of Object.entries(all)) {
    if (!(key in value)) {
      assert.ok(!(key in required), `${context}: missing "${key}"`);
      continue;
    }
    const v = value[key];
    const platformOk = (p: unknown) =>
      typeof p === "object" && p !== null &&
      typeof (p as { os: unknown }).os === "string" &&
      typeof (p as { architecture: unknown }).architecture === "string";
    const ok = {
      string: typeof v === "string",
      number: typeof v === "number",
      count: Number.isInteger(v) && (v as number) >= 0,
      digest: typeof v === "string" && /^sha256:[0-9a-f]{64}$/.test(v),
      object: typeof v === "object" && v !== null && !Array.isArray(v),
      array: Array.isArray(v),
      platform: platformOk(v),
      platforms: Array.isArray(v) && v.every(platformOk),
      "string|null": v === null || typeof v === "string",
      "number|null": v === null || typeof v === "number",
    }[kind];
    assert.ok(ok, `${context}: "${key}" is not ${kind}: ${JSON.stringify(v)}`);
  }
}

/** The one JSON object a successful run printed. */
function success(run: CliRun): Record<string, unknown> {
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stderr}`);
  const lines = run.stdout.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stdout: ${run.stdout}`);
  return JSON.parse(lines[0]);
}

/** The error object a failed run printed on stdout, with its exit status. */
function failure(
  run: CliRun,
  code: number,
): {
  message: string;
  code: string;
  status: number | null;
  url: string | null;
} {
  assert.equal(run.code, code, `exit ${run.code}\n${run.stderr}`);
  const lines = run.stdout.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stdout: ${run.stdout}`);
  const parsed = JSON.parse(lines[0]);
  assertShape(parsed, { error: "object" }, {}, "failure");
  assertShape(
    parsed.error,
    {
      message: "string",
      code: "string",
      status: "number|null",
      url: "string|null",
    },
    {},
    "error",
  );
  // The message is the one on stderr.
  assert.ok(run.stderr.includes(parsed.error.message), run.stderr);
  return parsed.error;
}

const DESCRIBED = {
  digest: "digest",
  mediaType: "string",
  size: "count",
} as const;
const COUNTS = {
  copied: "count",
  mounted: "count",
  existing: "count",
} as const;

async function withWork(fn: (work: string) => Promise<void>): Promise<void> {
  const work = await Deno.makeTempDir({ prefix: "oci-json-" });
  try {
    await fn(work);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

Deno.test("--json: push, pull, copy, inspect, tags and version print one object with one vocabulary", async () => {
  await using registry = await serveRegistry({});
  await withWork(async (work) => {
    await Deno.mkdir(`${work}/src`);
    await Deno.writeTextFile(`${work}/src/hello.txt`, "hello\n");
    const ref = `${registry.host}/json/app:v1`;
    const cache = ["--cache", `${work}/cache`];

    const pushed = success(
      await runCli(["push", `${work}/src`, ref, "--json", ...cache]),
    );
    assertShape(
      pushed,
      {
        source: "string",
        destination: "string",
        ...DESCRIBED,
        tags: "array",
        layer: "object",
      },
      { platform: "platform" },
      "push",
    );
    assert.equal(pushed.source, `${work}/src`);
    assert.equal(pushed.destination, ref);
    assert.equal(
      (pushed.platform as { os: string }).os,
      "linux",
      "the default platform is linux/<host arch>",
    );

    const pulled = success(
      await runCli(["pull", ref, `${work}/out`, "--json", ...cache]),
    );
    assertShape(
      pulled,
      {
        source: "string",
        destination: "string",
        ...DESCRIBED,
        platform: "platform",
        layers: "count",
      },
      {},
      "pull",
    );
    assert.equal(pulled.digest, pushed.digest);
    assert.equal(pulled.destination, `${work}/out`);

    const copied = success(
      await runCli(["copy", ref, `layout:${work}/layout:v1`, "--json"]),
    );
    assertShape(
      copied,
      {
        source: "string",
        destination: "string",
        ...DESCRIBED,
        ...COUNTS,
      },
      {},
      "copy",
    );
    assert.deepEqual(
      [copied.copied, copied.mounted, copied.existing],
      [2, 0, 0],
      "config and layer sent",
    );
    assert.equal(copied.destination, `layout:${work}/layout:v1`);
    const again = success(
      await runCli(["copy", ref, `layout:${work}/layout:v1`, "--json"]),
    );
    assert.deepEqual([again.copied, again.mounted, again.existing], [0, 0, 2]);
    const mounted = success(
      await runCli(["copy", ref, `${registry.host}/json/mirror:v1`, "--json"]),
    );
    assert.deepEqual(
      [mounted.copied, mounted.mounted, mounted.existing],
      [0, 2, 0],
      "within one registry: mounted, not counted as copied",
    );

    const inspected = success(await runCli(["inspect", ref, "--json"]));
    assertShape(
      inspected,
      {
        source: "string",
        ...DESCRIBED,
        layers: "array",
        manifest: "object",
      },
      { platform: "platform", created: "string" },
      "inspect",
    );
    assert.equal(inspected.digest, pushed.digest);
    for (const layer of inspected.layers as Record<string, unknown>[]) {
      assertShape(layer, DESCRIBED, {}, "inspect layer");
    }
    const config = success(
      await runCli(["inspect", ref, "--config", "--json"]),
    );
    assertShape(
      config,
      {
        source: "string",
        ...DESCRIBED,
        configDescriptor: "object",
        config: "object",
      },
      {},
      "inspect --config",
    );

    const tags = success(
      await runCli(["tags", `${registry.host}/json/app`, "--json"]),
    );
    assertShape(
      tags,
      { source: "string", repository: "string", tags: "array" },
      {},
      "tags",
    );
    assert.deepEqual(tags, {
      source: `${registry.host}/json/app`,
      repository: "json/app",
      tags: ["v1"],
    });
    const layoutTags = success(
      await runCli(["tags", `layout:${work}/layout`, "--json"]),
    );
    assert.deepEqual(layoutTags, {
      source: `layout:${work}/layout`,
      tags: ["v1"],
    });

    const version = success(await runCli(["version", "--json"]));
    assertShape(version, { version: "string", deno: "string" }, {}, "version");
  });
});

Deno.test("--json of an index: copy and inspect list the platforms", async () => {
  await using registry = await serveRegistry({});
  const ref = `${registry.host}/json/multi:v1`;
  const { descriptor } = await pushTestIndex(parseReference(ref), [
    makeImage({ os: "linux", architecture: "amd64" }, [100], 1),
    makeImage({ os: "linux", architecture: "arm64", variant: "v8" }, [200], 2),
  ]);
  const inspected = success(await runCli(["inspect", ref, "--json"]));
  assertShape(
    inspected,
    {
      source: "string",
      ...DESCRIBED,
      platforms: "platforms",
      manifests: "array",
      manifest: "object",
    },
    {},
    "inspect index",
  );
  assert.equal(inspected.digest, descriptor.digest);
  assert.deepEqual(inspected.platforms, [
    { os: "linux", architecture: "amd64" },
    { os: "linux", architecture: "arm64", variant: "v8" },
  ]);
  const one = success(
    await runCli(["inspect", ref, "--platform", "linux/arm64", "--json"]),
  );
  assertShape(
    one,
    {
      source: "string",
      ...DESCRIBED,
      index: "object",
      layers: "array",
      manifest: "object",
    },
    { platform: "platform", created: "string" },
    "inspect --platform",
  );
  assert.equal((one.index as { digest: string }).digest, descriptor.digest);

  const copied = success(
    await runCli(["copy", ref, `${registry.host}/json/copy:v1`, "--json"]),
  );
  assertShape(
    copied,
    {
      source: "string",
      destination: "string",
      ...DESCRIBED,
      platforms: "platforms",
      ...COUNTS,
    },
    {},
    "copy index",
  );
  const narrowed = success(
    await runCli([
      "copy",
      ref,
      `${registry.host}/json/one:v1`,
      "--platform",
      "linux/amd64",
      "--json",
    ]),
  );
  assertShape(
    narrowed,
    {
      source: "string",
      destination: "string",
      ...DESCRIBED,
      platform: "platform",
      sourcePlatforms: "platforms",
      ...COUNTS,
    },
    {},
    "copy --platform",
  );
});

Deno.test("--json failures: {error: {message, code, status, url}} on stdout, exit status unchanged", async () => {
  await using registry = await serveRegistry({});
  await withWork(async (work) => {
    await Deno.writeTextFile(`${work}/f`, "f");
    const missing = `${registry.host}/json/none:v1`;

    const inspect = failure(await runCli(["inspect", missing, "--json"]), 1);
    assert.equal(inspect.code, "MANIFEST_UNKNOWN");
    assert.equal(inspect.status, 404);
    assert.equal(
      inspect.url,
      `http://${registry.host}/v2/json/none/manifests/v1`,
    );

    const pull = failure(
      await runCli([
        "pull",
        missing,
        `${work}/out`,
        "--json",
        "--cache",
        `${work}/c`,
      ]),
      1,
    );
    assert.equal(pull.status, 404);

    const tags = failure(
      await runCli(["tags", `${registry.host}/json/none`, "--json"]),
      1,
    );
    assert.equal(tags.code, "NAME_UNKNOWN");
    assert.equal(tags.status, 404);

    const copy = failure(
      await runCli([
        "copy",
        missing,
        `${registry.host}/json/dst:v1`,
        "--json",
      ]),
      1,
    );
    assert.equal(copy.status, 404);

    // Nothing listens on port 1.
    const push = failure(
      await runCli([
        "push",
        `${work}/f`,
        "127.0.0.1:1/json/app:v1",
        "--json",
        "--retries",
        "0",
        "--cache",
        `${work}/c`,
      ]),
      1,
    );
    assert.equal(push.code, "NETWORK_REFUSED");
    assert.equal(push.status, null);
    assert.match(push.url!, /^http:\/\/127\.0\.0\.1:1\/v2\//);

    const usage = failure(
      await runCli([
        "copy",
        "a:1",
        "b:1",
        "--all",
        "--platform",
        "linux/amd64",
        "--json",
      ]),
      2,
    );
    assert.deepEqual(
      [usage.code, usage.status, usage.url],
      ["USAGE", null, null],
    );
    const typo = failure(await runCli(["tags", "a", "--jsno", "--json"]), 2);
    assert.match(typo.message, /unknown flag --jsno, did you mean --json\?/);

    // serve: the port is taken.
    const serve = failure(
      await runCli([
        "serve",
        "--port",
        registry.host.split(":")[1],
        "--json",
      ]),
      1,
    );
    assert.equal(serve.code, "AddrInUse");
  });
});
