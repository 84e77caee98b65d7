// Help and polish through the real CLI: versions, `oci help CMD`, every flag described with its
// default, mistyped flags, push's timestamps, and the README's command reference.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { serveRegistry } from "../../src/server/serve.ts";
import { COMMANDS } from "../../src/cli/commands.ts";
import { GLOBAL_FLAGS } from "../../src/cli/flags.ts";
import { type CliRun, runCli } from "../support/cli.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

function ok(run: CliRun): CliRun {
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stderr}`);
  return run;
}

/** The lines of a help section (`Flags:`, `Global flags:`) up to the next blank line. */
function section(help: string, title: string): string | undefined {
  const lines = help.split("\n");
  const start = lines.indexOf(title);
  if (start < 0) return undefined;
  const end = lines.indexOf("", start);
  return lines.slice(start, end < 0 ? undefined : end).join("\n");
}

Deno.test("oci --version and oci version print the version of deno.json", async () => {
  const { version } = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  for (const args of [["--version"], ["version"]]) {
    const run = ok(await runCli(args));
    assert.match(
      run.stdout,
      new RegExp(`^oci ${version.replaceAll(".", "\\.")} \\(deno \\S+\\)\\n$`),
    );
  }
  const json = JSON.parse(ok(await runCli(["--version", "--json"])).stdout);
  assert.equal(json.version, version);
});

Deno.test("oci help <command> is oci <command> --help, for every command; oci help is oci --help", async () => {
  for (const name of Object.keys(COMMANDS)) {
    const help = ok(await runCli(["help", name])).stdout;
    assert.equal(help, ok(await runCli([name, "--help"])).stdout, name);
    assert.equal(help, ok(await runCli([name, "-h"])).stdout, name);
  }
  assert.equal(
    ok(await runCli(["help"])).stdout,
    ok(await runCli(["--help"])).stdout,
  );
  const unknown = await runCli(["help", "puhs"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "puhs", did you mean push\?/);
});

Deno.test("every flag is described in its command's help; flags with a value say their default", async () => {
  for (const [name, command] of Object.entries(COMMANDS)) {
    const help = ok(await runCli([name, "--help"])).stdout;
    const flags = section(help, "Flags:") ?? "";
    const global = section(help, "Global flags:");
    assert.ok(global, `${name}: global flags listed`);
    for (
      const [flag, spec] of [
        ...Object.entries(command.flags).map(([f, s]) =>
          [f, s, flags] as const
        ),
        ...Object.entries(GLOBAL_FLAGS).map(([f, s]) =>
          [f, s, global] as const
        ),
      ].map(([f, s, text]) => [f, { ...s, text }] as const)
    ) {
      const line = new RegExp(`^ {2}(-\\w, )?--${flag}\\b.*\\S`, "m");
      assert.match(spec.text, line, `${name} --${flag} is described`);
      if (spec.type === "string") {
        assert.match(
          spec.description,
          /default/,
          `${name} --${flag}'s default`,
        );
      }
    }
  }
});

Deno.test("a mistyped flag: unknown flag --platfrom, did you mean --platform? and exit 2, global flags too", async () => {
  const cases: [string[], string][] = [
    [
      ["pull", "a:1", "dir", "--platfrom", "linux/amd64"],
      "unknown flag --platfrom, did you mean --platform?",
    ],
    [
      ["copy", "a:1", "b:1", "--platfrom=linux/amd64"],
      "unknown flag --platfrom, did you mean --platform?",
    ],
    [
      ["tags", "a", "--concurency", "2"],
      "unknown flag --concurency, did you mean --concurrency?",
    ],
    [["inspect", "a:1", "--jsno"], "unknown flag --jsno, did you mean --json?"],
    [
      ["push", "a", "b:1", "--verbsoe"],
      "unknown flag --verbsoe, did you mean --verbose?",
    ],
    [
      ["tags", "a", "--force"],
      "unknown flag --force: tags has no such flag (pull takes it)",
    ],
    [["tags", "a", "--zzzzzz"], "unknown flag --zzzzzz"],
  ];
  for (const [args, message] of cases) {
    const run = await runCli(args);
    assert.equal(run.code, 2, run.stderr);
    const lines = run.stderr.trim().split("\n");
    assert.equal(lines.length, 1, run.stderr);
    assert.ok(
      lines[0].startsWith(`oci: ${message} Run 'oci ${args[0]} --help'`) ||
        lines[0].startsWith(`oci: ${message}. Run 'oci ${args[0]} --help'`),
      lines[0],
    );
  }
});

Deno.test("push's help says how timestamps are chosen; two pushes of one tree give one digest", async () => {
  const help = ok(await runCli(["push", "--help"])).stdout;
  assert.match(help, /SOURCE_DATE_EPOCH/);
  assert.match(help, /--created TIME/);
  assert.match(help, /two pushes of one tree give one image digest/);
  await using registry = await serveRegistry({});
  const work = await Deno.makeTempDir({ prefix: "oci-help-" });
  try {
    await Deno.mkdir(`${work}/src/sub`, { recursive: true });
    await Deno.writeTextFile(`${work}/src/sub/a.txt`, "a\n");
    const push = async (
      ref: string,
      extra: string[] = [],
      env: Record<string, string> = {},
    ) =>
      JSON.parse(
        ok(
          await runCli(
            [
              "push",
              `${work}/src`,
              ref,
              "--json",
              "--cache",
              `${work}/c`,
              ...extra,
            ],
            { env },
          ),
        ).stdout,
      ).digest;
    const epoch = { SOURCE_DATE_EPOCH: "1700000000" };
    const first = await push(`${registry.host}/h/app:1`, [], epoch);
    // Files touched in between: their times are not in the layer.
    await Deno.utime(`${work}/src/sub/a.txt`, new Date(), new Date());
    assert.equal(await push(`layout:${work}/out:2`, [], epoch), first);
    assert.equal(
      await push(`${registry.host}/h/app:3`, [
        "--created",
        "2023-11-14T22:13:20Z",
      ], epoch),
      first,
      "--created of the same time",
    );
    const a = await push(`${registry.host}/h/app:4`, ["--created", "0"]);
    assert.equal(await push(`${registry.host}/h/app:5`, ["--created", "0"]), a);
    assert.notEqual(a, first);
    const bad = await runCli([
      "push",
      `${work}/src`,
      `${registry.host}/h/app:6`,
      "--created",
      "soon",
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--created needs an RFC 3339 time/);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("the README's command reference is what --help prints", async () => {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const heading = readme.indexOf("### Command reference");
  assert.ok(heading >= 0, "README has a command reference");
  const start = readme.indexOf("```text\n", heading) + "```text\n".length;
  const block = readme.slice(start, readme.indexOf("\n```", start));
  const parts: string[] = [];
  let global = "";
  for (const name of Object.keys(COMMANDS)) {
    const help = ok(await runCli([name, "--help"])).stdout;
    const usage = help.split("\n").find((l) => l.startsWith("Usage: "))!;
    const flags = section(help, "Flags:");
    parts.push(flags ? `${usage}\n\n${flags}` : usage);
    global = section(help, "Global flags:")!;
  }
  assert.equal(block, [...parts, global].join("\n\n"));
  // The synopsis at the top of the section lists every command's usage.
  for (const command of Object.values(COMMANDS)) {
    assert.ok(readme.includes(`\n${command.usage}\n`), command.usage);
  }
});
