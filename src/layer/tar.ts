/**
 * Tar for layers. Writing goes through `modern-tar` (web streams, PAX, links), re-exported from
 * this one file so that it can be swapped for `@std/tar` once that writes hardlinks and PAX
 * headers. Reading is our own {@linkcode readTar}: it pulls the archive one chunk at a time,
 * hands entry bodies out as views of those chunks (nothing is copied or queued), bounds every
 * header it has to hold (pax and GNU long names), and tells the caller when a chunk is done
 * with, so that memory does not grow with the archive's size.
 *
 * @module
 */
export {
  createTarPacker,
  type ParsedTarEntry,
  type TarHeader,
  type TarPackController,
} from "npm:modern-tar@0.8.6";

/** The kinds of entries {@linkcode readTar} reports. */
export type TarEntryType =
  | "file"
  | "directory"
  | "symlink"
  | "link"
  | "character-device"
  | "block-device"
  | "fifo"
  | "unknown";

/** An entry's header, with pax and GNU long-name headers already applied. */
export interface TarEntryHeader {
  /** The path, as the archive spells it (not yet checked). */
  readonly name: string;
  /** What the entry is. */
  readonly type: TarEntryType;
  /** Bytes of content (0 for all but files). */
  readonly size: number;
  /** Permission bits, including setuid, setgid and sticky (`& 0o7777`). */
  readonly mode: number;
  /** Modification time. */
  readonly mtime: Date;
  /** A link's target ("" for other entries). */
  readonly linkname: string;
}

/** One entry of an archive read by {@linkcode readTar}. */
export interface TarEntry {
  /** Its header. */
  readonly header: TarEntryHeader;
  /**
   * Its content, as views of the archive's chunks: each view is valid until the next one is
   * asked for. What is not read is skipped when the next entry is asked for.
   */
  readonly body: AsyncIterable<Uint8Array>;
}

/** Options of {@linkcode readTar}. */
export interface ReadTarOptions {
  /** Sees every chunk of the archive, in order, as it is read (to hash the whole tar). */
  readonly onChunk?: (chunk: Uint8Array) => void;
  /** Told when a chunk is no longer used by the reader nor by any view it handed out. */
  readonly onRelease?: (chunk: Uint8Array) => void;
  /**
   * The largest pax or GNU long-name header accepted, in bytes.
   * @default {MAX_TAR_META_BYTES}
   */
  readonly maxMetaBytes?: number;
}

/**
 * The largest pax or GNU long-name header {@linkcode readTar} holds (1 MiB, as Go's
 * `archive/tar` allows): names are at most a few KiB, and nothing else in them is used.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_TAR_META_BYTES } from "./tar.ts";
 * assert.equal(MAX_TAR_META_BYTES, 1024 * 1024);
 * ```
 */
export const MAX_TAR_META_BYTES = 1024 * 1024;

/**
 * The bytes are not a well-formed tar: a bad checksum, a truncated entry, an oversized header.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TarFormatError } from "./tar.ts";
 * assert.equal(new TarFormatError("bad checksum").name, "TarFormatError");
 * ```
 */
export class TarFormatError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong.
   */
  constructor(message: string) {
    super(message);
    this.name = "TarFormatError";
  }
}

const BLOCK = 512;
const EMPTY = new Uint8Array(0);

/** Pulls bytes from a stream one chunk at a time, without queueing or copying bodies. */
class ChunkSource {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #options: ReadTarOptions;
  #chunk: Uint8Array = EMPTY;
  #offset = 0;
  #ended = false;

  constructor(stream: ReadableStream<Uint8Array>, options: ReadTarOptions) {
    this.#reader = stream.getReader();
    this.#options = options;
  }

  /** Makes sure unread bytes are at hand; false at the end of the stream. */
  async #fill(): Promise<boolean> {
    while (this.#offset >= this.#chunk.byteLength) {
      if (this.#ended) return false;
      if (this.#chunk !== EMPTY) this.#options.onRelease?.(this.#chunk);
      this.#chunk = EMPTY;
      this.#offset = 0;
      const { value, done } = await this.#reader.read();
      if (done) {
        this.#ended = true;
        return false;
      }
      this.#options.onChunk?.(value);
      this.#chunk = value;
    }
    return true;
  }

  /** A view of up to `max` next bytes (valid until the next call), or undefined at the end. */
  async next(max: number): Promise<Uint8Array | undefined> {
    if (!(await this.#fill())) return undefined;
    const view = this.#chunk.subarray(this.#offset, this.#offset + max);
    this.#offset += view.byteLength;
    return view;
  }

  /** A copy of the next `size` bytes (fewer at the end of the stream). */
  async read(size: number): Promise<Uint8Array> {
    const bytes = new Uint8Array(size);
    let got = 0;
    while (got < size) {
      const view = await this.next(size - got);
      if (view === undefined) break;
      bytes.set(view, got);
      got += view.byteLength;
    }
    return got === size ? bytes : bytes.subarray(0, got);
  }

  /** Skips `size` bytes; false if the stream ends first. */
  async skip(size: number): Promise<boolean> {
    for (let left = size; left > 0;) {
      const view = await this.next(left);
      if (view === undefined) return false;
      left -= view.byteLength;
    }
    return true;
  }

  /** Reads to the end, requiring zeros (what follows the end-of-archive marker). */
  async drainZeros(): Promise<void> {
    for (;;) {
      const view = await this.next(Infinity);
      if (view === undefined) return;
      if (!view.every((byte) => byte === 0)) {
        throw new TarFormatError(
          "data follows the end-of-archive marker",
        );
      }
    }
  }

  async cancel(reason?: unknown): Promise<void> {
    await this.#reader.cancel(reason).catch(() => {});
  }
}

const decoder = new TextDecoder();

/** A NUL-terminated string field. */
function stringField(block: Uint8Array, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return decoder.decode(end === -1 ? field : field.subarray(0, end));
}

/** A numeric field: octal digits (space or NUL padded), or GNU base-256. */
function numberField(
  block: Uint8Array,
  start: number,
  length: number,
  what: string,
): number {
  const field = block.subarray(start, start + length);
  if (field[0] & 0x80) {
    if (field[0] === 0xff) {
      throw new TarFormatError(`the header's ${what} is negative`);
    }
    let value = field[0] & 0x7f;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    if (!Number.isSafeInteger(value)) {
      throw new TarFormatError(`the header's ${what} is too large`);
    }
    return value;
  }
  const text = decoder.decode(field).replace(/[\0 ]+$/, "").replace(
    /^ +/,
    "",
  );
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) {
    throw new TarFormatError(
      `the header's ${what} is not an octal number: ${JSON.stringify(text)}`,
    );
  }
  return parseInt(text, 8);
}

/** Whether the stored checksum matches (unsigned, or signed as some old tars wrote it). */
function checksumMatches(block: Uint8Array): boolean {
  const stored = numberField(block, 148, 8, "checksum");
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

const TYPES: Record<string, TarEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "link",
  "2": "symlink",
  "3": "character-device",
  "4": "block-device",
  "5": "directory",
  "6": "fifo",
};

/** Header types that describe the next entry instead of being one. */
type MetaType = "x" | "g" | "L" | "K";
const META_NAMES: Record<MetaType, string> = {
  x: "pax",
  g: "pax global",
  L: "GNU long-name",
  K: "GNU long-link",
};

/** What pax and GNU headers change in the entry that follows them. */
interface Overrides {
  name?: string;
  linkname?: string;
  size?: number;
  mtime?: Date;
}

/** Parses pax records (`"<length> <key>=<value>\n"`), strictly. */
function parsePax(data: Uint8Array): Map<string, string> {
  const records = new Map<string, string>();
  let offset = 0;
  while (offset < data.byteLength) {
    const space = data.indexOf(0x20, offset);
    const lengthText = space === -1
      ? ""
      : decoder.decode(data.subarray(offset, space));
    const length = /^[1-9][0-9]*$/.test(lengthText) ? Number(lengthText) : NaN;
    const end = offset + length;
    if (!(end <= data.byteLength) || data[end - 1] !== 0x0a) {
      throw new TarFormatError(`a pax record at byte ${offset} is malformed`);
    }
    const record = decoder.decode(data.subarray(space + 1, end - 1));
    const equals = record.indexOf("=");
    if (equals <= 0) {
      throw new TarFormatError(`a pax record at byte ${offset} has no key`);
    }
    records.set(record.slice(0, equals), record.slice(equals + 1));
    offset = end;
  }
  return records;
}

/** The overrides a pax extended header sets. */
function paxOverrides(data: Uint8Array): Overrides {
  const overrides: Overrides = {};
  for (const [key, value] of parsePax(data)) {
    if (key === "path") overrides.name = value;
    else if (key === "linkpath") overrides.linkname = value;
    else if (key === "size") {
      if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) {
        throw new TarFormatError(`the pax size "${value}" is not a size`);
      }
      overrides.size = Number(value);
    } else if (key === "mtime") {
      const seconds = Number(value);
      if (!Number.isFinite(seconds)) {
        throw new TarFormatError(`the pax mtime "${value}" is not a time`);
      }
      overrides.mtime = new Date(seconds * 1000);
    }
  }
  return overrides;
}

/** The header block's own fields, before overrides. */
function parseBlock(block: Uint8Array): {
  flag: string;
  header: TarEntryHeader;
} {
  if (!checksumMatches(block)) {
    throw new TarFormatError("a header's checksum does not match");
  }
  const flag = String.fromCharCode(block[156]);
  let name = stringField(block, 0, 100);
  if (stringField(block, 257, 6) === "ustar") {
    const prefix = stringField(block, 345, 155);
    if (prefix !== "") name = `${prefix}/${name}`;
  }
  const type = TYPES[flag] ?? "unknown";
  return {
    flag,
    header: {
      name,
      type,
      size: numberField(block, 124, 12, "size"),
      mode: numberField(block, 100, 8, "mode") & 0o7777,
      mtime: new Date(numberField(block, 136, 12, "mtime") * 1000),
      linkname: stringField(block, 157, 100),
    },
  };
}

function isZeroBlock(block: Uint8Array): boolean {
  return block.every((byte) => byte === 0);
}

function paddingOf(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Reads a pax or GNU header's data (at most `max` bytes) and what it sets. */
async function readMeta(
  source: ChunkSource,
  flag: MetaType,
  size: number,
  max: number,
): Promise<Overrides> {
  if (size > max) {
    throw new TarFormatError(
      `a ${
        META_NAMES[flag]
      } header of ${size} bytes is larger than the ${max} allowed`,
    );
  }
  const data = await source.read(size + paddingOf(size));
  if (data.byteLength < size + paddingOf(size)) {
    throw new TarFormatError(
      `the archive is truncated: it ends inside a ${META_NAMES[flag]} header`,
    );
  }
  const content = data.subarray(0, size);
  switch (flag) {
    case "x":
      return paxOverrides(content);
    case "g":
      // Checked, then ignored, as Go's archive/tar and containerd do: a global path or size
      // applying to every later entry is not something layers use.
      parsePax(content);
      return {};
    case "L":
      return { name: stringField(content, 0, size) };
    case "K":
      return { linkname: stringField(content, 0, size) };
  }
}

/** Reads the block after a zero block: the archive must end with two of them. */
async function readEnd(source: ChunkSource): Promise<void> {
  const second = await source.read(BLOCK);
  if (second.byteLength < BLOCK || !isZeroBlock(second)) {
    throw new TarFormatError(
      "a zero block is not followed by a second one (the end-of-archive marker)",
    );
  }
  await source.drainZeros();
}

function isMeta(flag: string): flag is MetaType {
  return Object.hasOwn(META_NAMES, flag);
}

/**
 * Reads a tar archive from a stream, entry by entry, pulling only as fast as the caller takes
 * entries and their bodies. Strict: checksums must match, every entry must be complete, the
 * archive must end with its two zero blocks (and nothing but zeros after them). Pax headers
 * (`path`, `linkpath`, `size`, `mtime`) and GNU long names apply to the next entry; each may
 * be at most `maxMetaBytes`; pax global headers are checked and ignored. Unknown entry types
 * are reported as `"unknown"` (and their content skipped unless read).
 *
 * @param stream The tar bytes.
 * @param options A callback for every chunk (hashing), one for chunks done with, a limit.
 * @returns The entries, in order.
 * @throws {TarFormatError} When the bytes are not a well-formed tar.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createTarPacker, readTar } from "./tar.ts";
 * const { readable, controller } = createTarPacker();
 * const bytes = new Response(readable).arrayBuffer();
 * const body = controller.add({ name: "hello.txt", size: 2 }).getWriter();
 * await body.write(new TextEncoder().encode("hi"));
 * await body.close();
 * controller.finalize();
 * const names: string[] = [];
 * for await (const entry of readTar(new Response(await bytes).body!)) {
 *   names.push(`${entry.header.name} ${entry.header.size}`);
 * }
 * assert.deepEqual(names, ["hello.txt 2"]);
 * ```
 */
export async function* readTar(
  stream: ReadableStream<Uint8Array>,
  options: ReadTarOptions = {},
): AsyncGenerator<TarEntry> {
  const source = new ChunkSource(stream, options);
  const maxMeta = options.maxMetaBytes ?? MAX_TAR_META_BYTES;
  let pending: Overrides = {};
  let finished = false;
  try {
    for (;;) {
      const block = await source.read(BLOCK);
      if (block.byteLength < BLOCK) {
        throw new TarFormatError(
          block.byteLength === 0
            ? "the archive is truncated: it ends without its end-of-archive marker"
            : "the archive is truncated: it ends inside a header",
        );
      }
      if (isZeroBlock(block)) {
        await readEnd(source);
        finished = true;
        return;
      }
      const { flag, header: own } = parseBlock(block);
      if (isMeta(flag)) {
        pending = {
          ...pending,
          ...await readMeta(source, flag, own.size, maxMeta),
        };
        continue;
      }
      const { header, dataSize } = withOverrides(own, pending);
      pending = {};
      yield* entryOf(source, header, dataSize);
    }
  } finally {
    if (!finished) await source.cancel();
  }
}

/**
 * The entry's header with the pax and GNU overrides applied, and how many bytes of data follow
 * it in the archive: files (and unknown types) carry their size; links, directories, devices
 * and fifos carry none whatever their size field says (as Go's archive/tar reads them), except
 * a "file" whose name ends in "/", which is a directory whose data is skipped.
 */
function withOverrides(
  own: TarEntryHeader,
  overrides: Overrides,
): { header: TarEntryHeader; dataSize: number } {
  const name = overrides.name ?? own.name;
  const carriesData = own.type === "file" || own.type === "unknown";
  const dataSize = carriesData ? overrides.size ?? own.size : 0;
  const isDirectory = own.type === "file" && name.endsWith("/");
  return {
    header: {
      ...own,
      name,
      type: isDirectory ? "directory" : own.type,
      linkname: overrides.linkname ?? own.linkname,
      mtime: overrides.mtime ?? own.mtime,
      size: isDirectory ? 0 : dataSize,
    },
    dataSize,
  };
}

/** Yields one entry, then skips whatever of its data the caller did not read. */
async function* entryOf(
  source: ChunkSource,
  header: TarEntryHeader,
  dataSize: number,
): AsyncGenerator<TarEntry> {
  const unread = dataSize - header.size;
  let left = header.size;
  async function* body(): AsyncGenerator<Uint8Array> {
    while (left > 0) {
      const view = await source.next(left);
      if (view === undefined) break;
      left -= view.byteLength;
      yield view;
    }
    if (left > 0) {
      throw new TarFormatError(
        `the archive is truncated: it ends inside "${header.name}"`,
      );
    }
  }
  yield { header, body: body() };
  if (!(await source.skip(left + unread + paddingOf(dataSize)))) {
    throw new TarFormatError(
      `the archive is truncated: it ends inside "${header.name}"`,
    );
  }
}
