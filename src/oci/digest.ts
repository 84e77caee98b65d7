/**
 * Content digests (`algorithm:encoded`) and hashing while bytes flow.
 *
 * @module
 */
import { createBufferFiller, fillingStream } from "../io/bytes.ts";
import { createHash } from "node:crypto";

/** The digest algorithms the OCI image spec registers and this library accepts. */
export type DigestAlgorithm = "sha256" | "sha512";

/** A parsed digest, e.g. `{ algorithm: "sha256", encoded: "2c26b4…" }`. */
export interface Digest {
  /** The hash function. */
  readonly algorithm: DigestAlgorithm;
  /** The lowercase hex encoding of the hash. */
  readonly encoded: string;
}

/** A finished hash: the digest string and how many bytes went in. */
export interface DigestResult {
  /** The digest as `algorithm:encoded`. */
  readonly digest: string;
  /** The number of bytes hashed. */
  readonly size: number;
}

const ENCODED_LENGTH: Readonly<Record<DigestAlgorithm, number>> = {
  sha256: 64,
  sha512: 128,
};

const HEX_REGEXP = /^[0-9a-f]*$/;
const HEX_ANY_CASE_REGEXP = /^[0-9a-fA-F]*$/;

/**
 * Thrown when a string is not a digest this library accepts.
 *
 * @example Catch a malformed digest
 * ```ts
 * import assert from "node:assert/strict";
 * import { DigestError, parseDigest } from "./digest.ts";
 * assert.throws(() => parseDigest("sha256:abc"), DigestError);
 * ```
 */
export class DigestError extends SyntaxError {
  /** The text that failed to parse. */
  readonly input: string;

  /**
   * Creates the error.
   *
   * @param input The text that failed to parse.
   * @param reason Why it is not a digest.
   */
  constructor(input: string, reason: string) {
    super(`Cannot parse digest "${input}": ${reason}`);
    this.name = "DigestError";
    this.input = input;
  }
}

/**
 * Thrown when bytes do not hash to the digest, or do not have the size, that was expected.
 *
 * @example Inspect a mismatch
 * ```ts
 * import assert from "node:assert/strict";
 * import { DigestMismatchError } from "./digest.ts";
 * const error = new DigestMismatchError("sha256:aa", { digest: "sha256:bb", size: 3 });
 * assert.equal(error.actual, "sha256:bb");
 * ```
 */
export class DigestMismatchError extends Error {
  /** The digest that was expected. */
  readonly expected: string;
  /** The digest of the bytes that arrived (may be undefined when the size was already wrong). */
  readonly actual: string | undefined;
  /** The size that was expected, when known. */
  readonly expectedSize: number | undefined;
  /** How many bytes arrived. */
  readonly size: number;

  /**
   * Creates the error.
   *
   * @param expected The digest that was expected.
   * @param actual What the bytes hashed to and how many there were.
   * @param options The expected size, a context for the message (e.g. a URL) and a cause.
   */
  constructor(
    expected: string,
    actual: { digest?: string; size: number },
    options: { expectedSize?: number; context?: string; cause?: unknown } = {},
  ) {
    const where = options.context ? ` from ${options.context}` : "";
    const what = options.expectedSize !== undefined &&
        actual.size !== options.expectedSize
      ? `expected ${options.expectedSize} bytes, got ${actual.size}`
      : `bytes hash to ${actual.digest}`;
    super(`Content${where} does not match ${expected}: ${what}`, {
      cause: options.cause,
    });
    this.name = "DigestMismatchError";
    this.expected = expected;
    this.actual = actual.digest;
    this.expectedSize = options.expectedSize;
    this.size = actual.size;
  }
}

/**
 * Parses `algorithm:encoded`, accepting `sha256` (64 lowercase hex) and `sha512` (128 lowercase hex).
 *
 * @param text The digest, e.g. `sha256:e3b0c442…`.
 * @returns The algorithm and encoded hash.
 * @throws {DigestError} When the text is not such a digest; the message says why.
 *
 * @example Parse and print back
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDigest, parseDigest } from "./digest.ts";
 * const text = "sha256:" + "a".repeat(64);
 * assert.equal(parseDigest(text).algorithm, "sha256");
 * assert.equal(formatDigest(parseDigest(text)), text);
 * ```
 */
export function parseDigest(text: string): Digest {
  const colon = text.indexOf(":");
  if (colon < 0) {
    throw new DigestError(text, 'missing algorithm: expected "sha256:<hex>"');
  }
  const algorithm = text.slice(0, colon);
  const encoded = text.slice(colon + 1);
  if (algorithm === "") {
    throw new DigestError(text, "missing algorithm before the colon");
  }
  if (!(algorithm in ENCODED_LENGTH)) {
    throw new DigestError(
      text,
      `unknown algorithm "${algorithm}": expected sha256 or sha512`,
    );
  }
  const length = ENCODED_LENGTH[algorithm as DigestAlgorithm];
  if (!HEX_REGEXP.test(encoded)) {
    throw new DigestError(
      text,
      HEX_ANY_CASE_REGEXP.test(encoded)
        ? "the hex must be lowercase"
        : "the encoded part is not hex",
    );
  }
  if (encoded.length !== length) {
    throw new DigestError(
      text,
      `${algorithm} needs ${length} hex characters, got ${encoded.length}`,
    );
  }
  return { algorithm: algorithm as DigestAlgorithm, encoded };
}

/**
 * Prints a digest as `algorithm:encoded`.
 *
 * @param digest The parsed digest.
 * @returns The canonical string.
 *
 * @example Print a digest
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDigest } from "./digest.ts";
 * assert.equal(formatDigest({ algorithm: "sha256", encoded: "a".repeat(64) }), "sha256:" + "a".repeat(64));
 * ```
 */
export function formatDigest(digest: Digest): string {
  return `${digest.algorithm}:${digest.encoded}`;
}

/**
 * Hashes bytes in one go (for manifests and other small documents).
 *
 * @param bytes The bytes, or a string hashed as UTF-8.
 * @param algorithm The hash function.
 * @returns The digest as `algorithm:encoded`.
 *
 * @example Digest of the empty string
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestOf } from "./digest.ts";
 * assert.equal(digestOf(""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
 * ```
 */
export function digestOf(
  bytes: Uint8Array | string,
  algorithm: DigestAlgorithm = "sha256",
): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/**
 * Hashes a file, reading it through one reused 1 MiB buffer: memory stays flat and the hash
 * runs at about the speed of `openssl dgst` (Deno's file stream hands out 64 KiB chunks, which
 * costs about 40 % more time per GiB).
 *
 * @param path The file.
 * @param algorithm The hash function.
 * @returns The digest and the number of bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestOf, digestOfFile } from "./digest.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "hello");
 * assert.deepEqual(await digestOfFile(path), { digest: digestOf("hello"), size: 5 });
 * await Deno.remove(path);
 * ```
 */
export async function digestOfFile(
  path: string | URL,
  algorithm: DigestAlgorithm = "sha256",
): Promise<DigestResult> {
  const hash = createHash(algorithm);
  const buffer = new Uint8Array(1 << 20);
  let size = 0;
  using file = await Deno.open(path);
  for (;;) {
    const read = await file.read(buffer);
    if (read === null) break;
    hash.update(buffer.subarray(0, read));
    size += read;
  }
  return { digest: `${algorithm}:${hash.digest("hex")}`, size };
}

/**
 * A pass-through stream that hashes the bytes flowing through it. Each chunk is handed on as soon
 * as it is hashed, so nothing is buffered; when the stream closes, {@linkcode DigestStream.result}
 * resolves with the digest and the byte count. The hash is `node:crypto`'s native one, since
 * WebCrypto cannot hash incrementally.
 *
 * @example Hash bytes while they are read
 * ```ts
 * import assert from "node:assert/strict";
 * import { DigestStream, digestOf } from "./digest.ts";
 * const hasher = new DigestStream();
 * const text = await new Response(new Response("hello").body!.pipeThrough(hasher)).text();
 * assert.equal(text, "hello");
 * assert.deepEqual(await hasher.result, { digest: digestOf("hello"), size: 5 });
 * ```
 */
export class DigestStream extends TransformStream<Uint8Array, Uint8Array> {
  /** Resolves with the digest and size when the stream ends; rejects if it is aborted. */
  readonly result: Promise<DigestResult>;

  /**
   * Creates the hashing stream.
   *
   * @param algorithm The hash function, `sha256` by default.
   */
  constructor(algorithm: DigestAlgorithm = "sha256") {
    const hash = createHash(algorithm);
    let size = 0;
    const { promise, resolve, reject } = Promise.withResolvers<DigestResult>();
    super({
      transform(chunk, controller) {
        hash.update(chunk);
        size += chunk.byteLength;
        controller.enqueue(chunk);
      },
      flush() {
        resolve({ digest: `${algorithm}:${hash.digest("hex")}`, size });
      },
      cancel(reason) {
        reject(reason);
      },
    });
    // A consumer that only reads the data must not see an unhandled rejection.
    promise.catch(() => {});
    this.result = promise;
  }
}

/** Options of {@linkcode verifyStream}. */
export interface VerifyStreamOptions {
  /** The expected size: more bytes are an error at once, fewer at the end. */
  readonly size?: number;
  /** Where the bytes come from (e.g. a URL), for the error message. */
  readonly context?: string;
  /** Told the number of bytes so far, after each chunk is checked. */
  readonly onProgress?: (bytes: number) => void;
  /** Told the digest and size once the bytes matched, just before the stream closes. */
  readonly onEnd?: (result: DigestResult) => void;
  /**
   * Stops the stream: once aborted, the source is cancelled with the reason (for a response
   * body, that closes the connection) and the stream errors with it, a pending read included.
   */
  readonly signal?: AbortSignal;
}

/**
 * Wraps a byte stream in one that hashes the bytes as they pass and errors with a
 * {@linkcode DigestMismatchError} when they do not match the digest (too many bytes: at once;
 * a wrong hash or too few: at the end), so a consumer writing them somewhere can discard them.
 * It is a byte stream that fills whole 1 MiB chunks: a BYOB reader
 * (`getReader({ mode: "byob" })`) reads straight into its own reused buffer, with no copy and
 * no allocation per chunk, and a default reader gets 1 MiB chunks instead of 64 KiB ones. A
 * store that writes such a stream need not hash it again (`Store.push`'s `verified`). With a `signal`,
 * an abort cancels the source at once and errors the stream with the abort's reason: nothing
 * more is read from the source.
 *
 * @param source The bytes to check (a BYOB-capable byte stream is read without copies).
 * @param expected The digest they must have.
 * @param options The expected size, a context for the error, progress and end callbacks, and
 * an abort signal.
 * @returns The checked bytes.
 * @throws {DigestError} When `expected` is not a digest.
 *
 * @example Check bytes while they are read
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestOf, DigestMismatchError, verifyStream } from "./digest.ts";
 * const good = verifyStream(new Response("abc").body!, digestOf("abc"), { size: 3 });
 * assert.equal(await new Response(good).text(), "abc");
 * const bad = verifyStream(new Response("abd").body!, digestOf("abc"));
 * await assert.rejects(new Response(bad).text(), DigestMismatchError);
 * ```
 *
 * @example An abort stops the reading at once
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestOf, verifyStream } from "./digest.ts";
 * let cancelled = false;
 * const endless = new ReadableStream<Uint8Array>({ cancel() { cancelled = true; } });
 * const controller = new AbortController();
 * const stream = verifyStream(endless, digestOf(""), { signal: controller.signal });
 * const reading = new Response(stream).arrayBuffer();
 * controller.abort(new Error("stop"));
 * await assert.rejects(reading, /stop/);
 * assert.ok(cancelled);
 * ```
 */
export function verifyStream(
  source: ReadableStream<Uint8Array>,
  expected: string,
  options: VerifyStreamOptions = {},
): ReadableStream<Uint8Array> {
  const { algorithm } = parseDigest(expected);
  const hash = createHash(algorithm);
  const chunks = createBufferFiller(source, { signal: options.signal });
  let size = 0;
  const mismatch = (digest?: string) =>
    new DigestMismatchError(expected, { digest, size }, {
      expectedSize: options.size,
      context: options.context,
    });
  const stream = fillingStream(async (view) => {
    const filled = await chunks.fill(view);
    if (filled.byteLength > 0) {
      size += filled.byteLength;
      if (options.size !== undefined && size > options.size) {
        await chunks.cancel().catch(() => {});
        throw mismatch();
      }
      hash.update(filled);
      options.onProgress?.(size);
      return filled;
    }
    const digest = `${algorithm}:${hash.digest("hex")}`;
    if (digest !== expected || (options.size ?? size) !== size) {
      throw mismatch(digest);
    }
    options.onEnd?.({ digest, size });
    return filled;
  }, (reason) => chunks.cancel(reason));
  return stream;
}
