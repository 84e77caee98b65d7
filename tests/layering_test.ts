// The import order of src/ (issue 13; architecture review §5.1): vocabulary and byte helpers,
// then the transport, then the stores, then images and layers, then the server and the CLI.
// Each file of src/ may import files of its own rank or below, never above. The test reads the
// import and export-from statements of every file (doc examples, in comments, do not count).
// Outside src/, bench/, peers/ and examples/ never import tests/ (the last test).
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SRC = join(ROOT, "src");

/**
 * Rank of each directory (or top-level file) of src/: lower ranks know nothing of higher ones.
 * A new directory must be placed here before it can be imported.
 */
const RANKS: Readonly<Record<string, number>> = {
  // Vocabulary (digests, references, media types, platforms, manifests) and byte/file helpers:
  // no I/O beyond files, nothing above io/.
  oci: 0,
  io: 0,
  // Requests: the opener and its layers.
  transport: 1,
  // Where content lives: the stores (a registry's blob, manifest and tag operations under
  // store/remote/), the layout.
  store: 2,
  // Operations on images and layers between stores.
  layer: 3,
  image: 3,
  // The embedded registry and the command line: nothing in src/ imports them but themselves.
  server: 4,
  cli: 4,
};

/**
 * Imports against the order that are known and not fixed yet, as `from -> to` (paths under
 * src/). An entry here must still exist (the test fails once it is gone, so the list only
 * shrinks). Empty since the stage-1 moves of issue 13: the nine imports of image/manifest.ts,
 * media_types.ts and platform.ts by registry/, store/ and layout/ now point into oci/.
 */
const ALLOWED: ReadonlySet<string> = new Set<string>([]);

/**
 * Directories of one rank that import each other both ways, as `a <-> b` (sorted): known
 * cycles not broken yet. The test fails on a new one, and on one of these once it is gone.
 * Empty since layout/ and the stage merged into store/layout_store.ts (issue 13, stage 2).
 */
const ALLOWED_CYCLES: ReadonlySet<string> = new Set<string>([]);

/** Specifiers that are not relative: only node: built-ins, and npm: in the tar writer alone. */
const NON_RELATIVE: Readonly<Record<string, RegExp>> = {
  "layer/tar.ts": /^(?:node|npm):/,
};

/** Import and export-from statements at the start of a line (not in a doc comment). */
const STATEMENT_REGEXP =
  /^(?:import|export)(?:\s+type)?\s*(?:\{[^}]*\}|\*(?:\s+as\s+\w+)?|\w+(?:\s*,\s*\{[^}]*\})?)\s*from\s*["']([^"']+)["']|^import\s*["']([^"']+)["']/gm;
/** Dynamic imports in code (a line that is not a comment). */
const DYNAMIC_REGEXP =
  /^(?!\s*(?:\*|\/\/)).*\bimport\(\s*["']([^"']+)["']\s*\)/gm;

async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* sourceFiles(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

/** An import: the importing file (under src/), and the file imported or the bare specifier. */
interface Edge {
  readonly from: string;
  readonly to: string;
  readonly relative: boolean;
}

/**
 * Every import of every file under `dir`, with the importing file and the relative imports as
 * paths under `base`.
 */
async function importsOf(dir: string, base: string): Promise<Edge[]> {
  const edges: Edge[] = [];
  for await (const path of sourceFiles(dir)) {
    const from = relative(base, path);
    const text = await Deno.readTextFile(path);
    const specifiers = [
      ...[...text.matchAll(STATEMENT_REGEXP)].map((m) => m[1] ?? m[2]),
      ...[...text.matchAll(DYNAMIC_REGEXP)].map((m) => m[1]),
    ];
    for (const specifier of specifiers) {
      const isRelative = specifier.startsWith(".");
      const to = isRelative
        ? relative(base, normalize(join(dirname(path), specifier)))
        : specifier;
      edges.push({ from, to, relative: isRelative });
    }
  }
  return edges;
}

/** Every import of every file of src/, relative ones as paths under src/. */
function importsOfSrc(): Promise<Edge[]> {
  return importsOf(SRC, SRC);
}

/**
 * What the top-level folders besides src/ and tests/ may import (relative imports, by their
 * first path segment; anything else must be a node: built-in): nothing of them imports tests/,
 * the launchers of peer programs import no project code, and the examples only the library's
 * published entry points (`mod.ts` and the `./server` entry), as a user would. An entry is a
 * first path segment, or a whole path.
 */
const TOP_LEVEL: Readonly<Record<string, readonly string[]>> = {
  bench: ["bench", "peers", "src", "mod.ts"],
  peers: ["peers"],
  examples: ["examples", "mod.ts", "src/server/mod.ts"],
};

const group = (path: string) => path.split("/")[0];

Deno.test("src/ imports follow the layers: oci, io → transport → store → layer, image → server, cli", async () => {
  const edges = await importsOfSrc();
  // The parser sees the imports there are (a broken pattern must not pass vacuously).
  assert.ok(edges.length > 200, `only ${edges.length} imports found`);
  assert.ok(
    edges.some((e) =>
      e.from === "store/remote/manifests.ts" &&
      e.to === "oci/parse_manifest.ts"
    ),
  );
  const against = new Set<string>();
  for (const { from, to } of edges.filter((e) => e.relative)) {
    assert.ok(!to.startsWith(".."), `${from} imports ${to}, outside src/`);
    for (const path of [from, to]) {
      assert.ok(
        group(path) in RANKS,
        `${path}: src/${group(path)} has no rank in tests/layering_test.ts`,
      );
    }
    if (RANKS[group(to)] > RANKS[group(from)]) against.add(`${from} -> ${to}`);
  }
  const unexpected = [...against].filter((edge) => !ALLOWED.has(edge)).sort();
  assert.deepEqual(unexpected, [], "imports against the order of layers");
  const fixed = [...ALLOWED].filter((edge) => !against.has(edge)).sort();
  assert.deepEqual(fixed, [], "allowed imports that are gone: remove them");
});

Deno.test("directories of one rank do not import each other both ways", async () => {
  const pairs = new Set<string>();
  for (const { from, to } of (await importsOfSrc()).filter((e) => e.relative)) {
    const [a, b] = [group(from), group(to)];
    if (a !== b && RANKS[a] === RANKS[b]) pairs.add(`${a} -> ${b}`);
  }
  const cycles = new Set<string>();
  for (const pair of pairs) {
    const [a, b] = pair.split(" -> ");
    if (pairs.has(`${b} -> ${a}`)) cycles.add([a, b].sort().join(" <-> "));
  }
  const unexpected = [...cycles].filter((c) => !ALLOWED_CYCLES.has(c)).sort();
  assert.deepEqual(unexpected, [], "directories that import each other");
  const fixed = [...ALLOWED_CYCLES].filter((c) => !cycles.has(c)).sort();
  assert.deepEqual(fixed, [], "allowed cycles that are gone: remove them");
});

Deno.test("src/ imports only relative paths and node: built-ins (npm: in layer/tar.ts alone)", async () => {
  for (
    const { from, to } of (await importsOfSrc()).filter((e) => !e.relative)
  ) {
    const allowed = NON_RELATIVE[from] ?? /^node:/;
    assert.match(to, allowed, `${from} imports ${to}`);
  }
});

Deno.test("bench/, peers/ and examples/ import nothing under tests/ (src/ only src/, above)", async () => {
  for (const [dir, allowed] of Object.entries(TOP_LEVEL)) {
    const edges = await importsOf(join(ROOT, dir), ROOT);
    assert.ok(edges.length > 0, `no imports found in ${dir}/`);
    for (const edge of edges) {
      const { from, to } = edge;
      if (edge.relative) {
        assert.ok(
          allowed.includes(group(to)) || allowed.includes(to),
          `${from} imports ${to}: ${dir}/ may import only ${
            allowed.join(", ")
          }`,
        );
      } else assert.match(to, /^node:/, `${from} imports ${to}`);
    }
  }
});
