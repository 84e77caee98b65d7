/**
 * Crafted layers for extraction tests and attacks: raw ustar blocks written byte by byte (so
 * that names with NUL bytes, `..`, pax and GNU long-name headers, bad sizes can all be made),
 * gzip, and a sandbox with sentinels around a target to see what an extraction touched.
 *
 * @module
 */
import { concatBytes } from "../../src/io/bytes.ts";
import { gzipSync } from "node:zlib";

/** One entry of a raw archive. */
export interface RawEntry {
  /** The ustar name field (at most 100 bytes are written; use `pax` or `gnuLongName` beyond). */
  readonly name: string;
  /** The typeflag, `"0"` (file) unless given. */
  readonly type?: string;
  /** The content (files only). */
  readonly body?: Uint8Array | string;
  /** The size field, when it must differ from the body's length (meta headers). */
  readonly size?: number;
  /** The link target field. */
  readonly linkname?: string;
  /** Permission bits, `0o644` unless given. */
  readonly mode?: number;
  /** Pax records written in an `x` header before the entry. */
  readonly pax?: Record<string, string>;
  /** A name written in a GNU `L` header before the entry. */
  readonly gnuLongName?: string;
}

const encoder = new TextEncoder();

function octal(value: number, length: number): Uint8Array {
  return encoder.encode(value.toString(8).padStart(length - 1, "0") + "\0");
}

/** One 512-byte ustar header block with a correct checksum. */
export function ustarBlock(
  fields: {
    name: string;
    type?: string;
    size?: number;
    linkname?: string;
    mode?: number;
  },
): Uint8Array {
  const block = new Uint8Array(512);
  block.set(encoder.encode(fields.name).subarray(0, 100), 0);
  block.set(octal(fields.mode ?? 0o644, 8), 100);
  block.set(octal(0, 8), 108);
  block.set(octal(0, 8), 116);
  block.set(octal(fields.size ?? 0, 12), 124);
  block.set(octal(0, 12), 136);
  block[156] = (fields.type ?? "0").charCodeAt(0);
  block.set(encoder.encode(fields.linkname ?? "").subarray(0, 100), 157);
  block.set(encoder.encode("ustar\x0000"), 257);
  block.fill(0x20, 148, 156);
  const sum = block.reduce((a, b) => a + b, 0);
  block.set(encoder.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return block;
}

function padded(data: Uint8Array): Uint8Array[] {
  const padding = (512 - (data.byteLength % 512)) % 512;
  return [data, new Uint8Array(padding)];
}

/** A pax extended header's records. */
export function paxRecords(records: Record<string, string>): Uint8Array {
  let text = "";
  for (const [key, value] of Object.entries(records)) {
    const rest = ` ${key}=${value}\n`;
    const restBytes = encoder.encode(rest).byteLength;
    let length = restBytes + 1;
    while (String(length).length + restBytes !== length) {
      length = String(length).length + restBytes;
    }
    text += `${length}${rest}`;
  }
  return encoder.encode(text);
}

/** The blocks of one entry: its pax or GNU header if any, its header, its padded body. */
export function rawEntry(entry: RawEntry): Uint8Array[] {
  const blocks: Uint8Array[] = [];
  if (entry.pax) {
    const records = paxRecords(entry.pax);
    blocks.push(
      ustarBlock({ name: "PaxHeader", type: "x", size: records.byteLength }),
      ...padded(records),
    );
  }
  if (entry.gnuLongName !== undefined) {
    const name = encoder.encode(entry.gnuLongName + "\0");
    blocks.push(
      ustarBlock({ name: "././@LongLink", type: "L", size: name.byteLength }),
      ...padded(name),
    );
  }
  const body = typeof entry.body === "string"
    ? encoder.encode(entry.body)
    : entry.body ?? new Uint8Array(0);
  blocks.push(
    ustarBlock({
      name: entry.name,
      type: entry.type,
      size: entry.size ?? body.byteLength,
      linkname: entry.linkname,
      mode: entry.mode,
    }),
    ...padded(body),
  );
  return blocks;
}

/** A whole uncompressed archive, with its end-of-archive marker. */
export function rawTar(entries: readonly RawEntry[]): Uint8Array {
  return concatBytes([...entries.flatMap(rawEntry), new Uint8Array(1024)]);
}

/** gzip of some bytes. */
export function gzip(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(gzipSync(bytes));
}

/** A gzipped raw archive as a stream. */
export function layerStream(
  entries: readonly RawEntry[],
): ReadableStream<Uint8Array> {
  return new Response(gzip(rawTar(entries))).body!;
}

/**
 * A target inside a sandbox with sentinels: `sandbox/parent-sentinel` (in the target's
 * grandparent), `sandbox/dir/sibling-sentinel` (next to the target), and `target/lower`
 * (what a lower layer left). `check()` lists what is missing.
 */
export interface Sandbox extends AsyncDisposable {
  readonly root: string;
  readonly target: string;
  /** The sentinels that are gone or changed. */
  missing(options?: { lower?: boolean }): Promise<string[]>;
}

/** Makes a {@linkcode Sandbox}. */
export async function makeSandbox(): Promise<Sandbox> {
  const root = await Deno.makeTempDir({ prefix: "oci-sandbox-" });
  const target = `${root}/dir/target`;
  await Deno.mkdir(target, { recursive: true });
  const sentinels = {
    parent: `${root}/parent-sentinel`,
    sibling: `${root}/dir/sibling-sentinel`,
    lower: `${target}/lower`,
  };
  for (const path of Object.values(sentinels)) {
    await Deno.writeTextFile(path, "sentinel");
  }
  return {
    root,
    target,
    async missing(options = {}) {
      const gone: string[] = [];
      for (const [name, path] of Object.entries(sentinels)) {
        if (name === "lower" && options.lower === false) continue;
        const text = await Deno.readTextFile(path).catch(() => undefined);
        if (text !== "sentinel") gone.push(path.slice(root.length + 1));
      }
      return gone;
    },
    async [Symbol.asyncDispose]() {
      await Deno.remove(root, { recursive: true });
    },
  };
}
