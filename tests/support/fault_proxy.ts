/**
 * A seeded fault-injecting HTTP/1.1 proxy for tests: it sits between a client and a real
 * registry (CNCF distribution) on loopback and spoils a share of the exchanges the way busy
 * registries and flaky networks do — 429/503 with `Retry-After`, connections dropped before or
 * after the registry acted, bodies cut short, and one byte flipped in blob bodies.
 *
 * It works on raw TCP (`Deno.listen`), so a reset is a real closed socket with no answer, not
 * an HTTP error: the client's network error handling is what gets tested. Request bodies are
 * read whole before forwarding (tests move small images); response bodies stream through.
 */

import { seededRandom } from "./random.ts";

/** What the proxy can do to an exchange. */
export type ProxyFault =
  | "429"
  | "503"
  | "reset-before"
  | "reset-after"
  | "truncate"
  | "flip";

/** Every fault. */
export const PROXY_FAULTS: readonly ProxyFault[] = [
  "429",
  "503",
  "reset-before",
  "reset-after",
  "truncate",
  "flip",
];

/** Options of {@linkcode startFaultProxy}. */
export interface FaultProxyOptions {
  /** The registry to forward to, `http://127.0.0.1:PORT`. */
  target: string;
  /** Share of exchanges spoiled, 0 to 1. */
  rate: number;
  /** Seed of the choices, so that a run can be repeated. @default {1} */
  seed?: number;
  /** Faults to pick from. @default {PROXY_FAULTS} */
  kinds?: readonly ProxyFault[];
  /** `Retry-After` values sent with 429 and 503, picked at random. @default {["0", "1"]} */
  retryAfter?: readonly string[];
  /**
   * Also flip a byte in every n-th blob GET that no other fault took, so that a run always
   * tests digest verification however the random faults fall.
   */
  flipEveryBlobGets?: number;
}

/** One spoiled exchange. */
export interface FaultRecord {
  kind: ProxyFault;
  method: string;
  path: string;
}

/** A running proxy. */
export interface FaultProxy extends AsyncDisposable {
  /** `http://127.0.0.1:PORT` of the proxy. */
  url: string;
  /** `127.0.0.1:PORT`. */
  host: string;
  /** Exchanges seen. */
  readonly requests: number;
  /** Faults injected, in order. */
  readonly faults: readonly FaultRecord[];
  /** Every request header the proxy saw, lower-cased names (to look for leaked secrets). */
  readonly headers: readonly string[];
  /** Stops listening and closes open connections. Safe to call twice. */
  stop(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Buffered reads from a connection: lines, exact lengths, chunked bodies. */
class ConnReader {
  #conn: Deno.Conn;
  #buffer = new Uint8Array(0);
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }
  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) return false;
    const joined = new Uint8Array(this.#buffer.length + n);
    joined.set(this.#buffer);
    joined.set(chunk.subarray(0, n), this.#buffer.length);
    this.#buffer = joined;
    return true;
  }
  /** A line without its CRLF, or null at the end of the stream. */
  async line(): Promise<string | null> {
    for (;;) {
      const end = this.#buffer.indexOf(0x0a);
      if (end >= 0) {
        const text = decoder.decode(this.#buffer.subarray(0, end));
        this.#buffer = this.#buffer.subarray(end + 1);
        return text.replace(/\r$/, "");
      }
      if (!(await this.#fill())) return null;
    }
  }
  async exact(length: number): Promise<Uint8Array> {
    while (this.#buffer.length < length) {
      if (!(await this.#fill())) throw new Error("connection closed mid-body");
    }
    const out = this.#buffer.slice(0, length);
    this.#buffer = this.#buffer.subarray(length);
    return out;
  }
  async chunked(): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for (;;) {
      const size = parseInt((await this.line()) ?? "", 16);
      if (!Number.isFinite(size)) throw new Error("bad chunk size");
      if (size === 0) {
        while ((await this.line()) !== "") { /* trailers */ }
        break;
      }
      parts.push(await this.exact(size));
      await this.line();
    }
    const total = parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }
}

/** Headers that belong to one hop and are not forwarded. */
const HOP_HEADERS = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "host",
  "te",
  "trailer",
  "upgrade",
  "proxy-connection",
  "accept-encoding",
]);

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    offset += await conn.write(bytes.subarray(offset));
  }
}

/**
 * Starts a fault proxy on a free loopback port in front of `options.target`.
 *
 * @example
 * ```ts ignore
 * await using proxy = await startFaultProxy({ target: registry.url, rate: 0.1, seed: 7 });
 * ```
 */
export function startFaultProxy(options: FaultProxyOptions): FaultProxy {
  const random = seededRandom(options.seed ?? 1);
  const kinds = options.kinds ?? PROXY_FAULTS;
  const retryAfter = options.retryAfter ?? ["0", "1"];
  const target = new URL(options.target);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const host = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  const url = `http://${host}`;
  const faults: FaultRecord[] = [];
  const headersSeen: string[] = [];
  const conns = new Set<Deno.Conn>();
  let requests = 0;
  let stopped = false;

  /** Picks a fault for an exchange that applies to it, or none. */
  let blobGets = 0;
  const pick = (method: string, path: string): ProxyFault | undefined => {
    const isBlobGet = method === "GET" && /\/blobs\/sha256:/.test(path);
    if (random() >= options.rate) {
      if (!isBlobGet || !options.flipEveryBlobGets) return undefined;
      return ++blobGets % options.flipEveryBlobGets === 0 ? "flip" : undefined;
    }
    const hasBody = method === "GET";
    const usable = kinds.filter((kind) =>
      kind === "flip" ? isBlobGet : kind === "truncate" ? hasBody : true
    );
    if (usable.length === 0) return undefined;
    return usable[Math.floor(random() * usable.length)];
  };

  async function exchange(
    conn: Deno.Conn,
    reader: ConnReader,
  ): Promise<boolean> {
    const requestLine = await reader.line();
    if (requestLine === null || requestLine === "") return false;
    const [method, path] = requestLine.split(" ");
    const headers = new Headers();
    for (;;) {
      const line = await reader.line();
      if (line === null) return false;
      if (line === "") break;
      const colon = line.indexOf(":");
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      headersSeen.push(line);
    }
    requests++;
    const length = headers.get("content-length");
    const body = headers.get("transfer-encoding")?.includes("chunked")
      ? await reader.chunked()
      : length !== null && Number(length) > 0
      ? await reader.exact(Number(length))
      : undefined;
    const fault = pick(method, path);
    if (fault) faults.push({ kind: fault, method, path });
    if (fault === "reset-before") return false;
    if (fault === "429" || fault === "503") {
      const text = JSON.stringify({
        errors: [{
          code: fault === "429" ? "TOOMANYREQUESTS" : "UNAVAILABLE",
          message: "injected by the fault proxy",
        }],
      });
      const seconds = retryAfter[Math.floor(random() * retryAfter.length)];
      await writeAll(
        conn,
        encoder.encode(
          `HTTP/1.1 ${fault} ${
            fault === "429" ? "Too Many Requests" : "Service Unavailable"
          }\r\ncontent-type: application/json\r\nretry-after: ${seconds}\r\ncontent-length: ${
            encoder.encode(text).length
          }\r\nconnection: keep-alive\r\n\r\n${text}`,
        ),
      );
      return true;
    }

    const forwarded = new Headers();
    for (const [name, value] of headers) {
      if (!HOP_HEADERS.has(name)) forwarded.set(name, value);
    }
    forwarded.set("accept-encoding", "identity");
    const response = await fetch(new URL(path, target), {
      method,
      headers: forwarded,
      body: body as BodyInit | undefined,
      redirect: "manual",
    });
    if (fault === "reset-after") {
      await response.body?.cancel();
      return false;
    }
    let head = `HTTP/1.1 ${response.status} ${response.statusText}\r\n`;
    for (const [name, value] of response.headers) {
      if (HOP_HEADERS.has(name) && name !== "content-length") continue;
      const rewritten = name === "location"
        ? value.replace(target.origin, url)
        : value;
      head += `${name}: ${rewritten}\r\n`;
    }
    const noBody = method === "HEAD" || response.status === 204 ||
      response.status === 304 || response.body === null;
    const declared = response.headers.get("content-length");
    const chunked = !noBody && declared === null;
    if (chunked) head += "transfer-encoding: chunked\r\n";
    if (noBody && declared === null) head += "content-length: 0\r\n";
    head += "connection: keep-alive\r\n\r\n";
    await writeAll(conn, encoder.encode(head));
    if (noBody) {
      await response.body?.cancel();
      return true;
    }
    const total = declared === null ? undefined : Number(declared);
    let sent = 0;
    let flipped = false;
    for await (let chunk of response.body!) {
      if (fault === "truncate") {
        const half = Math.floor((total ?? 2 * (sent + chunk.length)) / 2);
        if (sent + chunk.length >= half) {
          await writeAll(conn, chunk.subarray(0, Math.max(0, half - sent)));
          return false;
        }
      }
      if (fault === "flip" && !flipped && chunk.length > 0) {
        chunk = chunk.slice();
        chunk[Math.floor(random() * chunk.length)] ^= 0x01;
        flipped = true;
      }
      sent += chunk.length;
      if (chunked) {
        await writeAll(
          conn,
          encoder.encode(`${chunk.length.toString(16)}\r\n`),
        );
        await writeAll(conn, chunk);
        await writeAll(conn, encoder.encode("\r\n"));
      } else await writeAll(conn, chunk);
    }
    if (chunked) await writeAll(conn, encoder.encode("0\r\n\r\n"));
    return true;
  }

  async function serve(conn: Deno.Conn): Promise<void> {
    conns.add(conn);
    const reader = new ConnReader(conn);
    try {
      while (!stopped && await exchange(conn, reader)) { /* keep-alive */ }
    } catch {
      // The client went away, or the registry did: the connection ends either way.
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  }

  const accepting = (async () => {
    try {
      for await (const conn of listener) serve(conn);
    } catch { /* listener closed */ }
  })();

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    listener.close();
    for (const conn of conns) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
    await accepting;
  };
  return {
    url,
    host,
    get requests() {
      return requests;
    },
    faults,
    headers: headersSeen,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
