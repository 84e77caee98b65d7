/**
 * Pieces of the benchmark that do not time anything, so a test can keep them from rotting:
 * input generation, running a command under GNU time, parsing peers' outputs, medians, and
 * the table.
 *
 * @module
 */

/** One timed run of a command. */
export interface Measurement {
  /** Wall-clock seconds. */
  seconds: number;
  /** Peak resident set size in MiB, from GNU time. */
  peakRssMiB: number;
  /** What the command printed on stdout. */
  stdout: string;
}

/** Reads `Maximum resident set size (kbytes): N` from `/usr/bin/time -v` output, in MiB. */
export function parseTimeOutput(stderr: string): number {
  const match = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  if (!match) {
    throw new Error(`no peak RSS in GNU time output: ${stderr.slice(-300)}`);
  }
  return Number(match[1]) / 1024;
}

/** Reads the hex digest from `openssl dgst -sha256 -r FILE` output. */
export function parseOpensslDigest(stdout: string): string {
  const match = /^([0-9a-f]{64}) /.exec(stdout.trim());
  if (!match) throw new Error(`cannot read openssl's digest from: ${stdout}`);
  return `sha256:${match[1]}`;
}

/** The median of some numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Runs a command under `/usr/bin/time -v`, returning wall seconds, peak RSS and stdout. */
export async function measure(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<Measurement> {
  const started = performance.now();
  const output = await new Deno.Command("/usr/bin/time", {
    args: ["-v", command, ...args],
    stdout: "piped",
    stderr: "piped",
    env: options.env,
    cwd: options.cwd,
  }).output();
  const seconds = (performance.now() - started) / 1000;
  const stderr = new TextDecoder().decode(output.stderr);
  if (output.code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${output.code}): ${
        stderr.slice(-2000)
      }`,
    );
  }
  return {
    seconds,
    peakRssMiB: parseTimeOutput(stderr),
    stdout: new TextDecoder().decode(output.stdout),
  };
}

/** Writes `size` bytes of incompressible data, gzip-compressed, to a file (stored blocks). */
export async function writeRandomGzip(
  path: string,
  size: number,
): Promise<void> {
  const file = await Deno.open(path, {
    write: true,
    create: true,
    truncate: true,
  });
  let left = Math.floor(size);
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (left <= 0) return controller.close();
      const chunk = crypto.getRandomValues(
        new Uint8Array(Math.min(65536, left)),
      );
      left -= chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
  await source.pipeThrough(
    new CompressionStream("gzip") as unknown as TransformStream<
      Uint8Array,
      Uint8Array
    >,
  ).pipeTo(file.writable);
}

/**
 * Writes a gzipped tar holding one file of `size` zeros: a small layer that inflates to `size`
 * (about 1,000 to 1), to show that extraction's memory does not follow a layer's size.
 */
export async function writeZerosLayer(
  path: string,
  size: number,
): Promise<void> {
  const file = await Deno.open(path, {
    write: true,
    create: true,
    truncate: true,
  });
  const zeros = new Uint8Array(1024 * 1024);
  let left = -1;
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (left < 0) {
        controller.enqueue(zerosTarHeader(size));
        left = size;
      } else if (left > 0) {
        const chunk = zeros.subarray(0, Math.min(zeros.byteLength, left));
        left -= chunk.byteLength;
        controller.enqueue(chunk);
      } else {
        // The body's padding, then the two zero blocks that end the archive.
        controller.enqueue(new Uint8Array(((512 - (size % 512)) % 512) + 1024));
        controller.close();
      }
    },
  });
  await source.pipeThrough(
    new CompressionStream("gzip") as unknown as TransformStream<
      Uint8Array,
      Uint8Array
    >,
  ).pipeTo(file.writable);
}

/** The ustar header of a file named `zeros` of `size` bytes. */
function zerosTarHeader(size: number): Uint8Array {
  const block = new Uint8Array(512);
  const put = (text: string, offset: number) =>
    block.set(new TextEncoder().encode(text), offset);
  put("zeros", 0);
  put("0000644\0", 100);
  put("0000000\0", 108);
  put("0000000\0", 116);
  put(size.toString(8).padStart(11, "0") + "\0", 124);
  put("00000000000\0", 136);
  put("        ", 148);
  block[156] = 0x30;
  put("ustar\x0000", 257);
  const sum = block.reduce((a, b) => a + b, 0);
  put(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  return block;
}

/** Writes a tree of `files` files totalling about `size` bytes: text-like, so gzip has work. */
export async function writeTree(
  root: string,
  size: number,
  files = 200,
): Promise<void> {
  const words = [
    "layer",
    "registry",
    "digest",
    "manifest",
    "blob",
    "index",
    "spack",
    "oci",
  ];
  const per = Math.ceil(size / files);
  let seed = 7;
  for (let i = 0; i < files; i++) {
    const dir = `${root}/d${i % 17}/sub${i % 5}`;
    await Deno.mkdir(dir, { recursive: true });
    const bytes = new Uint8Array(per);
    for (let j = 0; j < per; j++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      // Mostly words and spaces, some noise: compresses about 3:1 like source and binaries mixed.
      bytes[j] = (seed >>> 28) < 11
        ? words[(seed >>> 20) % words.length].charCodeAt((seed >>> 8) % 5)
        : seed >>> 24;
    }
    await Deno.writeFile(`${dir}/file${i}.dat`, bytes);
  }
}

/** One row of the result table. */
export interface Row {
  case: string;
  ours: number;
  peer: number;
  peerName: string;
  unit: "s" | "bytes" | "requests" | "MiB";
  target: string;
  ratio: number;
  met: boolean;
  oursRssMiB?: number;
  peerRssMiB?: number;
}

/** Formats the rows as a Markdown table. */
export function formatTable(rows: readonly Row[]): string {
  const header =
    "| case | ours | peer | ratio | target | met | peak RSS ours / peer (MiB) |";
  const rule = "|---|---|---|---|---|---|---|";
  const lines = rows.map((r) => {
    const value = (v: number) =>
      r.unit === "s" ? `${v.toFixed(2)} s` : `${v} ${r.unit}`;
    const rss = r.oursRssMiB !== undefined
      ? `${r.oursRssMiB.toFixed(0)} / ${r.peerRssMiB?.toFixed(0) ?? "–"}`
      : "–";
    // A `|` inside a cell (a peer's pipeline) is escaped, or it would end the cell.
    const cell = (text: string) => text.replaceAll("|", "\\|");
    return `| ${cell(r.case)} | ${value(r.ours)} | ${value(r.peer)} (${
      cell(r.peerName)
    }) | ${
      Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : "–"
    } | ${r.target} | ${r.met ? "yes" : "no"} | ${rss} |`;
  });
  return [header, rule, ...lines].join("\n");
}
