/**
 * A small HTTP/1.1 client over `Deno.connect` and `Deno.startTls`, which every request of the
 * default transport goes through, so that uploads, downloads, token requests and HEADs share one
 * trust and one route:
 *
 * - TLS is Deno's own, with the roots `fetch` uses (Deno's store, `DENO_CERT`, `--cert`,
 *   `--unsafely-ignore-certificate-errors`) plus the `caCerts` given;
 * - a proxy chosen by `proxy.ts` (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`) carries HTTPS in a
 *   `CONNECT` tunnel and plain HTTP in absolute form, with `Proxy-Authorization` from its URL;
 * - an upload goes out with its exact `Content-Length`, streamed from its source (Deno's `fetch`
 *   sends a stream body chunked, denoland/deno#24197).
 *
 * Responses: status line and headers, then a body framed by `Content-Length`, `chunked` or the
 * end of the connection; `1xx` answers are skipped. A connection whose response was read to its
 * end is kept for the next request to the same origin through the same route.
 *
 * @module
 */
import { createBufferFiller, pendingView } from "../io/bytes.ts";
import { redactUrl, TimeoutError, type TimeoutPhase } from "./errors.ts";
import type { ProxyRoute } from "./proxy.ts";
import { createWatchdog, idleTimeoutBody, type Watchdog } from "./timeouts.ts";

/** What one exchange needs besides the request. */
export interface Http1Options {
  /** The timeouts, every one filled in. */
  readonly timeouts: Readonly<
    { connect: number; headers: number; idle: number }
  >;
  /** PEM certificates trusted besides Deno's roots. */
  readonly caCerts?: readonly string[];
  /** The proxy to go through, or undefined to connect directly. */
  readonly proxy?: ProxyRoute;
  /** Idle connections to reuse; none kept when absent. */
  readonly pool?: ConnectionPool;
}

/** The body to send: its exact size and a way to (re)open it. */
export interface OutgoingBody {
  /** Bytes sent as `Content-Length`. */
  readonly size: number;
  /** The stream for the first attempt. */
  readonly stream: ReadableStream<Uint8Array>;
  /** A fresh stream, when the body can be sent again (a kept-alive connection was stale). */
  readonly reopen?: () => ReadableStream<Uint8Array>;
}

const CRLF = "\r\n";
const MAX_HEAD = 64 * 1024;
const MAX_LINE = 8 * 1024;
const READ_SIZE = 64 * 1024;
const UPLOAD_CHUNK_SIZE = 1 << 20;
const NULL_BODY_STATUSES = new Set([204, 205, 304]);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A connection with the bytes read past the last response. */
class Wire {
  readonly conn: Deno.Conn;
  readonly key: string;
  /** Set once the connection carried a request, so a failure may mean it went stale. */
  reused = false;
  #left: Uint8Array = new Uint8Array(0);
  #closed = false;

  constructor(conn: Deno.Conn, key: string) {
    this.conn = conn;
    this.key = key;
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  async write(bytes: Uint8Array): Promise<void> {
    let written = 0;
    while (written < bytes.byteLength) {
      written += await this.conn.write(bytes.subarray(written));
    }
  }

  /** Reads into `view`: what is buffered first, then the connection; null at its end. */
  async read(view: Uint8Array): Promise<number | null> {
    if (this.#left.byteLength > 0) {
      const take = Math.min(view.byteLength, this.#left.byteLength);
      view.set(this.#left.subarray(0, take));
      this.#left = this.#left.subarray(take);
      return take;
    }
    return await this.conn.read(view);
  }

  /**
   * Reads up to and including `terminator`, at most `max` bytes; undefined when the connection
   * ends before any byte, an error when it ends in the middle.
   */
  async readUntil(
    terminator: "\r\n" | "\r\n\r\n",
    max: number,
  ): Promise<Uint8Array | undefined> {
    let buffered = this.#left;
    this.#left = new Uint8Array(0);
    let searched = 0;
    for (;;) {
      const end = indexOf(buffered, terminator, searched);
      if (end >= 0) {
        this.#left = buffered.subarray(end);
        return buffered.subarray(0, end);
      }
      searched = Math.max(0, buffered.byteLength - terminator.length + 1);
      if (buffered.byteLength > max) {
        throw new TypeError(
          `the server sent a line or head longer than ${max} bytes`,
        );
      }
      const chunk = new Uint8Array(READ_SIZE);
      const read = await this.conn.read(chunk);
      if (read === null) {
        if (buffered.byteLength === 0) return undefined;
        throw new TypeError(
          "the connection closed in the middle of the response head",
        );
      }
      buffered = concat(buffered, chunk.subarray(0, read));
    }
  }
}

function indexOf(bytes: Uint8Array, terminator: string, from: number): number {
  const last = terminator.length - 1;
  for (let i = from + last; i < bytes.byteLength; i++) {
    if (bytes[i] !== 10 || bytes[i - 1] !== 13) continue;
    if (last === 1) return i + 1;
    if (bytes[i - 2] === 10 && bytes[i - 3] === 13) return i + 1;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.byteLength === 0) return b;
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

/**
 * Idle connections by origin and route, each closed after a while unused. Connections are only
 * kept once their response was read to the end.
 */
export class ConnectionPool {
  readonly #idle = new Map<string, Wire[]>();
  readonly #timers = new Map<Wire, ReturnType<typeof setTimeout>>();
  readonly #maxPerKey: number;
  readonly #idleMs: number;

  /**
   * Creates an empty pool.
   *
   * @param maxPerKey Idle connections kept per origin and route.
   * @param idleMs How long an idle connection is kept.
   *
   * @example
   * ```ts
   * import { ConnectionPool } from "./http1.ts";
   * const pool = new ConnectionPool();
   * pool.close();
   * ```
   */
  constructor(maxPerKey = 8, idleMs = 20_000) {
    this.#maxPerKey = maxPerKey;
    this.#idleMs = idleMs;
  }

  /** An idle connection for `key`, if one is kept. */
  take(key: string): Wire | undefined {
    const list = this.#idle.get(key);
    const wire = list?.pop();
    if (wire === undefined) return undefined;
    clearTimeout(this.#timers.get(wire));
    this.#timers.delete(wire);
    return wire;
  }

  /** Keeps a connection for reuse, or closes it when the pool for its key is full. */
  give(wire: Wire): void {
    const list = this.#idle.get(wire.key) ?? [];
    if (wire.closed || list.length >= this.#maxPerKey) {
      wire.close();
      return;
    }
    list.push(wire);
    this.#idle.set(wire.key, list);
    const timer = setTimeout(() => {
      this.#timers.delete(wire);
      const index = list.indexOf(wire);
      if (index >= 0) list.splice(index, 1);
      wire.close();
    }, this.#idleMs);
    Deno.unrefTimer(timer as unknown as number);
    this.#timers.set(wire, timer);
  }

  /**
   * Closes every idle connection.
   *
   * @example
   * ```ts
   * import { ConnectionPool } from "./http1.ts";
   * new ConnectionPool().close();
   * ```
   */
  close(): void {
    for (const [wire, timer] of this.#timers) {
      clearTimeout(timer);
      wire.close();
    }
    this.#timers.clear();
    this.#idle.clear();
  }
}

/** The parsed status line and headers of a response. */
interface ResponseHead {
  status: number;
  statusText: string;
  headers: Headers;
  version: string;
}

function parseResponseHead(bytes: Uint8Array): ResponseHead {
  const lines = decoder.decode(bytes).split(CRLF);
  const match = lines[0].match(/^HTTP\/(1\.[01]) (\d{3})(?: (.*))?$/);
  if (!match) {
    throw new TypeError(
      `the server did not answer HTTP/1.1: ${
        JSON.stringify(lines[0].slice(0, 80))
      }`,
    );
  }
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0 || /^\s/.test(line)) {
      throw new TypeError(
        `the server sent a malformed header line: ${
          JSON.stringify(line.slice(0, 80))
        }`,
      );
    }
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return {
    version: match[1],
    status: Number(match[2]),
    statusText: match[3] ?? "",
    headers,
  };
}

/** How the response body is delimited. */
type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" };

function framingOf(method: string, head: ResponseHead): Framing {
  if (method === "HEAD" || NULL_BODY_STATUSES.has(head.status)) {
    return { kind: "none" };
  }
  const encoding = head.headers.get("transfer-encoding");
  if (encoding !== null) {
    if (/(?:^|,)\s*chunked\s*$/i.test(encoding)) return { kind: "chunked" };
    return { kind: "close" };
  }
  const length = head.headers.get("content-length");
  if (length !== null) {
    const values = new Set(length.split(",").map((v) => v.trim()));
    const [value] = values;
    if (values.size !== 1 || !/^\d+$/.test(value)) {
      throw new TypeError(
        `the server sent an invalid Content-Length: ${length}`,
      );
    }
    return { kind: "length", length: Number(value) };
  }
  return { kind: "close" };
}

/** Whether the connection may carry another request once this response is read. */
function keepsAlive(head: ResponseHead, framing: Framing): boolean {
  if (framing.kind === "close") return false;
  const connection = head.headers.get("connection")?.toLowerCase() ?? "";
  if (head.version === "1.0") return /\bkeep-alive\b/.test(connection);
  return !/\bclose\b/.test(connection);
}

/** The request head: the request line and headers. */
function requestHead(
  request: Request,
  url: URL,
  body: OutgoingBody | undefined,
  proxy: ProxyRoute | undefined,
): Uint8Array {
  const viaProxy = proxy !== undefined && url.protocol === "http:";
  const target = viaProxy
    ? `${url.protocol}//${url.host}${url.pathname}${url.search}`
    : `${url.pathname}${url.search}`;
  const lines = [`${request.method} ${target} HTTP/1.1`, `host: ${url.host}`];
  const skip = new Set([
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
  ]);
  request.headers.forEach((value, name) => {
    if (!skip.has(name)) lines.push(`${name}: ${value}`);
  });
  if (!request.headers.has("accept")) lines.push("accept: */*");
  if (body !== undefined) lines.push(`content-length: ${body.size}`);
  else if (!["GET", "HEAD", "DELETE", "OPTIONS"].includes(request.method)) {
    lines.push("content-length: 0");
  }
  if (viaProxy && proxy.authorization) {
    lines.push(`proxy-authorization: ${proxy.authorization}`);
  }
  return encoder.encode(lines.join(CRLF) + CRLF + CRLF);
}

/** The pool key of a request's connection: origin and route. */
function poolKey(url: URL, proxy: ProxyRoute | undefined): string {
  const via = proxy
    ? `${proxy.hostname}:${proxy.port}|${proxy.authorization ?? ""}`
    : "direct";
  return `${via}|${url.protocol}//${url.host}`;
}

function hostnameOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, "$1");
}

function portOf(url: URL): number {
  if (url.port !== "") return Number(url.port);
  return url.protocol === "https:" ? 443 : 80;
}

/** Opens the tunnel of a `CONNECT` through the proxy; the proxy's refusal is an error. */
async function openTunnel(
  wire: Wire,
  url: URL,
  proxy: ProxyRoute,
): Promise<void> {
  const authority = `${
    url.host.startsWith("[") ? url.hostname : hostnameOf(url)
  }:${portOf(url)}`;
  const lines = [`CONNECT ${authority} HTTP/1.1`, `host: ${authority}`];
  if (proxy.authorization) {
    lines.push(`proxy-authorization: ${proxy.authorization}`);
  }
  await wire.write(encoder.encode(lines.join(CRLF) + CRLF + CRLF));
  const bytes = await wire.readUntil("\r\n\r\n", MAX_HEAD);
  if (bytes === undefined) {
    throw new TypeError(
      `the proxy ${proxy.display} closed the connection instead of answering CONNECT ${authority}`,
    );
  }
  const head = parseResponseHead(bytes);
  if (head.status === 407) throw new ProxyAuthError(proxy.display, authority);
  if (head.status !== 200) {
    throw new TypeError(
      `the proxy ${proxy.display} refused CONNECT ${authority}: ${head.status} ${head.statusText}`,
    );
  }
}

/**
 * The proxy asked for credentials (407), or refused the ones given: retrying cannot help, so it
 * is not a network error.
 */
export class ProxyAuthError extends Error {
  /** The proxy, without credentials. */
  readonly proxy: string;

  /**
   * Creates the error.
   *
   * @param proxy The proxy URL without credentials.
   * @param target What was asked of it (`host:port` of a CONNECT, or a URL).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ProxyAuthError } from "./http1.ts";
   * assert.match(new ProxyAuthError("http://proxy:3128", "ghcr.io:443").message, /407/);
   * ```
   */
  constructor(proxy: string, target: string) {
    super(
      `The proxy ${proxy} answered 407 Proxy Authentication Required for ${target}: give its credentials in the proxy URL (http://user:password@host:port)`,
    );
    this.name = "ProxyAuthError";
    this.proxy = proxy;
  }
}

/** Makes a new connection to the request's origin: TCP, the proxy's tunnel, TLS. */
async function connect(
  url: URL,
  options: Http1Options,
  signal: AbortSignal,
): Promise<Wire> {
  const proxy = options.proxy;
  const key = poolKey(url, proxy);
  const tcp = await Deno.connect({
    hostname: proxy ? proxy.hostname : hostnameOf(url),
    port: proxy ? proxy.port : portOf(url),
    signal,
  });
  tcp.setNoDelay(true);
  let wire = new Wire(tcp, key);
  const closeOnAbort = () => wire.close();
  signal.addEventListener("abort", closeOnAbort, { once: true });
  try {
    if (proxy && url.protocol === "https:") await openTunnel(wire, url, proxy);
    if (url.protocol === "https:") {
      const tls = await Deno.startTls(tcp, {
        hostname: hostnameOf(url),
        caCerts: options.caCerts ? [...options.caCerts] : undefined,
      });
      wire = new Wire(tls, key);
      await tls.handshake();
    }
    return wire;
  } catch (error) {
    wire.close();
    throw error;
  } finally {
    signal.removeEventListener("abort", closeOnAbort);
  }
}

/** The request's state: the connection, the watchdog, what ended it. */
class Exchange {
  readonly request: Request;
  readonly url: URL;
  readonly options: Http1Options;
  readonly cancel = new AbortController();
  readonly watchdog: Watchdog;
  wire: Wire | undefined;
  /** Why the exchange was cut short: a stall or the caller's abort. */
  reason: unknown;

  constructor(request: Request, options: Http1Options) {
    this.request = request;
    this.url = new URL(request.url);
    this.options = options;
    this.watchdog = createWatchdog((phase, ms) => this.stall(phase, ms));
  }

  stall(phase: TimeoutPhase, ms: number): TimeoutError {
    const error = new TimeoutError({
      method: this.request.method,
      url: this.request.url,
      phase,
      timeout: ms,
    });
    this.abort(error);
    return error;
  }

  abort(reason: unknown): void {
    this.reason ??= reason;
    this.cancel.abort(reason);
    this.wire?.close();
  }

  /** The error to report for `error`: the stall or abort behind it, else it with context. */
  explain(error: unknown): unknown {
    if (this.reason !== undefined) return this.reason;
    if (error instanceof TimeoutError || error instanceof ProxyAuthError) {
      return error;
    }
    const message = error instanceof Error ? error.message : String(error);
    return new TypeError(
      `Cannot send ${this.request.method} ${redactUrl(this.url)}: ${message}`,
      { cause: error },
    );
  }
}

/**
 * Sends one request over HTTP/1.1 and returns its response without following redirects. The
 * timeouts apply phase by phase (connecting with the proxy's tunnel and TLS, the server taking
 * the upload, the response headers, each wait on the body); the request's signal aborts it.
 *
 * @param request The request; its own body is sent when `body` is not given.
 * @param body The upload, with its exact size.
 * @param options Timeouts, trusted CAs, the proxy, the pool.
 * @returns The response; its body streams from the connection.
 *
 * @example A GET to a local server
 * ```ts
 * import assert from "node:assert/strict";
 * import { sendHttp1 } from "./http1.ts";
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) =>
 *   new Response(`${request.method} ${new URL(request.url).pathname}`));
 * const timeouts = { connect: 5000, headers: 5000, idle: 5000 };
 * const response = await sendHttp1(new Request(`http://127.0.0.1:${server.addr.port}/v2/`), undefined, { timeouts });
 * assert.equal(await response.text(), "GET /v2/");
 * ```
 */
export async function sendHttp1(
  request: Request,
  body: OutgoingBody | undefined,
  options: Http1Options,
): Promise<Response> {
  if (request.signal.aborted) throw request.signal.reason;
  if (body === undefined && request.body !== null) {
    // Small bodies (JSON, forms) that came without a source: sent with their length.
    const bytes = new Uint8Array(await request.arrayBuffer());
    body = {
      size: bytes.byteLength,
      stream: new Blob([bytes]).stream(),
      reopen: () => new Blob([bytes]).stream(),
    };
  }
  const exchange = new Exchange(request, options);
  const onAbort = () => exchange.abort(request.signal.reason);
  request.signal.addEventListener("abort", onAbort, { once: true });
  const key = poolKey(exchange.url, options.proxy);
  try {
    const pooled = options.pool?.take(key);
    if (pooled !== undefined) {
      try {
        return await exchangeOn(exchange, pooled, body, onAbort);
      } catch (error) {
        // A kept-alive connection the server had closed: once more on a new one.
        if (!isStale(exchange, error) || (body && !body.reopen)) throw error;
        if (body) body = { ...body, stream: body.reopen!() };
      }
    }
    const wire = await connectWithTimeout(exchange);
    return await exchangeOn(exchange, wire, body, onAbort);
  } catch (error) {
    request.signal.removeEventListener("abort", onAbort);
    exchange.watchdog.disarm();
    throw exchange.explain(error);
  }
}

/** A failure on a reused connection before any byte of an answer. */
function isStale(exchange: Exchange, error: unknown): boolean {
  return exchange.reason === undefined && error instanceof StaleConnection;
}

/** The server closed a kept-alive connection before answering on it. */
class StaleConnection extends Error {
  constructor(cause: unknown) {
    super("the kept-alive connection was closed by the server", { cause });
    this.name = "StaleConnection";
  }
}

async function connectWithTimeout(exchange: Exchange): Promise<Wire> {
  exchange.watchdog.arm("connect", exchange.options.timeouts.connect);
  try {
    const signal = AbortSignal.any([
      exchange.request.signal,
      exchange.cancel.signal,
    ]);
    return await connect(exchange.url, exchange.options, signal);
  } finally {
    exchange.watchdog.disarm();
  }
}

/** Writes the request and its body on `wire` and reads the answer's head. */
async function exchangeOn(
  exchange: Exchange,
  wire: Wire,
  body: OutgoingBody | undefined,
  onAbort: () => void,
): Promise<Response> {
  exchange.wire = wire;
  const reused = wire.reused;
  wire.reused = true;
  const { timeouts } = exchange.options;
  const head = requestHead(
    exchange.request,
    exchange.url,
    body,
    exchange.options.proxy,
  );
  let answered = false;
  const reading = readFinalHead(wire).then((h) => {
    answered = true;
    return h;
  });
  // Its failure is reported below (or is moot once the upload failed first).
  reading.catch(() => {});
  let complete = body === undefined;
  try {
    await wire.write(head);
    if (body === undefined) {
      exchange.watchdog.arm("headers", timeouts.headers);
    } else {
      const writing = writeBody(
        wire,
        body,
        exchange.watchdog,
        timeouts.idle,
        () => answered,
      )
        .then(() => {
          complete = true;
          if (!answered) exchange.watchdog.arm("headers", timeouts.headers);
        });
      await Promise.race([reading, writing]).catch(async (error) => {
        // The server may have answered and closed while we wrote (a 401, a 413): its answer wins.
        if (!await answersWithin(reading, EARLY_ANSWER_GRACE)) throw error;
      });
    }
    const parsed = await reading;
    exchange.watchdog.disarm();
    if (parsed === undefined) {
      throw reused
        ? new StaleConnection(undefined)
        : new TypeError("the server closed the connection without answering");
    }
    return toResponse(exchange, wire, parsed, complete, onAbort);
  } catch (error) {
    exchange.watchdog.disarm();
    wire.close();
    if (
      reused && !answered && exchange.reason === undefined &&
      !(error instanceof StaleConnection) && isConnectionError(error)
    ) {
      throw new StaleConnection(error);
    }
    throw error;
  }
}

/** How long a failed upload waits for the answer the server may have sent before closing. */
const EARLY_ANSWER_GRACE = 1000;

/** Whether the head arrives within `ms`. */
async function answersWithin(
  reading: Promise<ResponseHead | undefined>,
  ms: number,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      reading.then((head) => head !== undefined, () => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function isConnectionError(error: unknown): boolean {
  return error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.UnexpectedEof;
}

/** Reads response heads until one that is not `1xx`; undefined when the connection ends first. */
async function readFinalHead(wire: Wire): Promise<ResponseHead | undefined> {
  for (;;) {
    const bytes = await wire.readUntil("\r\n\r\n", MAX_HEAD);
    if (bytes === undefined) return undefined;
    const head = parseResponseHead(bytes);
    if (head.status >= 200) return head;
    if (head.status === 101) {
      throw new TypeError(
        "the server switched protocols, which a registry client does not ask for",
      );
    }
  }
}

/**
 * Streams the body to the connection in 1 MiB chunks, reading the next chunk while one is
 * written; each write that waits longer than `idle` on the server is an `upload` stall. Stops
 * (cancelling the source) once the server has answered.
 */
async function writeBody(
  wire: Wire,
  body: OutgoingBody,
  watchdog: Watchdog,
  idle: number,
  answered: () => boolean,
): Promise<void> {
  const filler = createBufferFiller(body.stream);
  // Buffers as large as the body (and one byte, so that one longer than declared is seen),
  // never more than 1 MiB: a 4 KiB blob took two 1 MiB buffers, and 200 small uploads left
  // 400 MiB for the collector (peak RSS 433 MiB pushing 200 blobs of 4-64 KiB).
  const chunkSize = Math.min(UPLOAD_CHUNK_SIZE, body.size + 1);
  let spare: ArrayBuffer = new ArrayBuffer(chunkSize);
  // The next chunk is read while the current one is written: an abort (or a failed read) can
  // reject it while we wait on the socket, before anything awaits it, so it is observed at once
  // (`await next` below still sees the failure).
  const prefetch = (buffer: ArrayBuffer) => {
    const filling = filler.fill(new Uint8Array(buffer));
    filling.catch(() => {});
    return filling;
  };
  let next = prefetch(new ArrayBuffer(chunkSize));
  let sent = 0;
  try {
    for (;;) {
      const chunk = await next;
      if (chunk.byteLength === 0) break;
      sent += chunk.byteLength;
      if (sent > body.size) {
        throw new RangeError(
          `Cannot upload: the body is longer than its declared size ${body.size}`,
        );
      }
      next = prefetch(spare);
      if (answered()) {
        await next.catch(() => {});
        await filler.cancel().catch(() => {});
        return;
      }
      watchdog.arm("upload", idle);
      await wire.write(chunk);
      if (!answered()) watchdog.disarm();
      spare = chunk.buffer as ArrayBuffer;
    }
    if (sent !== body.size) {
      throw new RangeError(
        `Cannot upload: the body has ${sent} bytes but its declared size is ${body.size}`,
      );
    }
  } catch (error) {
    await next.catch(() => {});
    await filler.cancel(error).catch(() => {});
    throw error;
  }
}

/** The response, its body streamed from the connection and the connection kept when done. */
function toResponse(
  exchange: Exchange,
  wire: Wire,
  head: ResponseHead,
  requestComplete: boolean,
  onAbort: () => void,
): Response {
  const { request, options } = exchange;
  const framing = framingOf(request.method, head);
  const reusable = requestComplete && keepsAlive(head, framing);
  let settled = false;
  const finish = (ok: boolean) => {
    if (settled) return;
    settled = true;
    request.signal.removeEventListener("abort", onAbort);
    exchange.wire = undefined;
    if (ok && reusable && options.pool && exchange.reason === undefined) {
      options.pool.give(wire);
    } else wire.close();
  };
  if (
    framing.kind === "none" ||
    (framing.kind === "length" && framing.length === 0)
  ) {
    finish(true);
    return build(head, null, request.url);
  }
  const raw = bodyStream(wire, framing, exchange, finish);
  const body = idleTimeoutBody(raw, {
    idle: options.timeouts.idle,
    onStall: () => exchange.stall("body", options.timeouts.idle),
    signal: request.signal,
  });
  return build(head, body, request.url);
}

function build(
  head: ResponseHead,
  body: ReadableStream<Uint8Array> | null,
  url: string,
): Response {
  if (head.status < 200 || head.status > 599) {
    throw new TypeError(`the server answered with status ${head.status}`);
  }
  const response = new Response(body, {
    status: head.status,
    statusText: head.statusText,
    headers: head.headers,
  });
  Object.defineProperty(response, "url", { value: url });
  return response;
}

/** A byte stream over the body's bytes on the connection, per its framing. */
function bodyStream(
  wire: Wire,
  framing: Framing,
  exchange: Exchange,
  finish: (ok: boolean) => void,
): ReadableStream<Uint8Array> {
  const next = framing.kind === "chunked"
    ? chunkedReader(wire)
    : framing.kind === "length"
    ? lengthReader(wire, framing.length)
    : closeReader(wire);
  return new ReadableStream({
    type: "bytes",
    async pull(controller: ReadableByteStreamController) {
      const request = controller.byobRequest;
      const view = pendingView(controller, READ_SIZE);
      let read: number | null;
      try {
        read = await next(view);
      } catch (error) {
        finish(false);
        controller.error(exchange.explain(error));
        return;
      }
      if (read === null) {
        finish(true);
        controller.close();
        request?.respond(0);
        return;
      }
      if (request) request.respond(read);
      else controller.enqueue(view.subarray(0, read));
    },
    cancel() {
      finish(false);
    },
  });
}

type BodyReader = (view: Uint8Array) => Promise<number | null>;

function truncated(got: number, want: number): TypeError {
  return new TypeError(
    `the connection closed after ${got} of the body's ${want} bytes`,
  );
}

function lengthReader(wire: Wire, length: number): BodyReader {
  let left = length;
  return async (view) => {
    if (left === 0) return null;
    const read = await wire.read(
      view.subarray(0, Math.min(left, view.byteLength)),
    );
    if (read === null) throw truncated(length - left, length);
    left -= read;
    return read;
  };
}

function closeReader(wire: Wire): BodyReader {
  return (view) => wire.read(view);
}

function chunkedReader(wire: Wire): BodyReader {
  let left = 0;
  let done = false;
  const line = async (): Promise<string> => {
    const bytes = await wire.readUntil("\r\n", MAX_LINE);
    if (bytes === undefined) {
      throw new TypeError(
        "the connection closed in the middle of a chunked body",
      );
    }
    return decoder.decode(bytes).slice(0, -2);
  };
  return async (view) => {
    if (done) return null;
    if (left === 0) {
      const size = (await line()).split(";")[0].trim();
      if (!/^[0-9a-fA-F]{1,12}$/.test(size)) {
        throw new TypeError(
          `the server sent a bad chunk size: ${
            JSON.stringify(size.slice(0, 20))
          }`,
        );
      }
      left = parseInt(size, 16);
      if (left === 0) {
        while ((await line()) !== "") {
          // Trailers are not used.
        }
        done = true;
        return null;
      }
    }
    const read = await wire.read(
      view.subarray(0, Math.min(left, view.byteLength)),
    );
    if (read === null) {
      throw new TypeError(
        "the connection closed in the middle of a chunked body",
      );
    }
    left -= read;
    if (left === 0 && (await line()) !== "") {
      throw new TypeError("the server sent a chunk longer than its size");
    }
    return read;
  };
}
