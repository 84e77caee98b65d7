/**
 * A small forward proxy for tests, on raw TCP (`Deno.listen`) on 127.0.0.1: `CONNECT host:port`
 * opens a tunnel that carries bytes both ways (HTTPS through a proxy), and a request with an
 * absolute URI (`GET http://host:port/path HTTP/1.1`) is forwarded in origin form (plain HTTP
 * through a proxy). It records every tunnel and request, so a test can assert that all the
 * traffic of a push or pull went through it, and can require Basic proxy credentials.
 *
 * Only loopback targets (`127.0.0.0/8`, `::1`, `localhost`) are reached: any other answers
 * `502` without a name lookup, so tests never leave the machine. Each forwarded plain-HTTP
 * request gets its own upstream connection with `Connection: close`, so no second request can
 * slip through a kept-alive connection unrecorded.
 *
 * @module
 */

/** One tunnel or forwarded request. */
export interface ProxyRecord {
  /** `CONNECT`, or the method of a forwarded request. */
  method: string;
  /** `host:port` for `CONNECT`, the absolute URL otherwise, as the client wrote it. */
  target: string;
  /** The user name of a `Proxy-Authorization: Basic` header (also a wrong one); else undefined. */
  user: string | undefined;
  /** The status the proxy answered (200 for an open tunnel), or the registry's for a request. */
  status: number;
  /** Bytes the client sent after the request head (the tunnel's or the request body's). */
  bytesUp: number;
  /** Bytes sent back to the client after the proxy's own answer (the tunnel's or the response). */
  bytesDown: number;
  /**
   * The proxy's own address on its connection to the target (`127.0.0.1:PORT`), which the
   * target's access log shows as the client; undefined when none was made.
   */
  upstream: string | undefined;
}

/** Options of {@linkcode startConnectProxy}. */
export interface ConnectProxyOptions {
  /** Require Basic `Proxy-Authorization` with one of these users (name to password): 407 otherwise. */
  users?: Record<string, string>;
}

/** A running proxy. */
export interface ConnectProxy extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`, for `HTTPS_PROXY` and `HTTP_PROXY`. */
  url: string;
  /** `127.0.0.1:PORT`. */
  host: string;
  /** Every tunnel and request so far, in the order they arrived. */
  readonly records: readonly ProxyRecord[];
  /** Stops listening, closes every connection and waits for them. Safe to call twice. */
  stop(): Promise<void>;
}

const MAX_HEAD = 64 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A parsed request head and the bytes that came after it. */
interface Head {
  method: string;
  target: string;
  version: string;
  headers: [string, string][];
  rest: Uint8Array;
}

function indexOfHeadEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.length; i++) {
    if (
      bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 &&
      bytes[i - 3] === 13
    ) return i + 1;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Reads up to the end of the request head; undefined when the client closed first. */
async function readHead(conn: Deno.Conn): Promise<Head | undefined> {
  let buffered: Uint8Array = new Uint8Array(0);
  const chunk = new Uint8Array(16 * 1024);
  for (;;) {
    const end = indexOfHeadEnd(buffered);
    if (end >= 0) {
      return parseHead(buffered.subarray(0, end), buffered.slice(end));
    }
    if (buffered.length > MAX_HEAD) {
      throw new RangeError(`request head longer than ${MAX_HEAD} bytes`);
    }
    const read = await conn.read(chunk);
    if (read === null) return undefined;
    buffered = concat(buffered, chunk.subarray(0, read));
  }
}

function parseHead(head: Uint8Array, rest: Uint8Array): Head {
  const lines = decoder.decode(head).split("\r\n").filter((l) => l !== "");
  const [method = "", target = "", version = "HTTP/1.1"] = lines[0].split(" ");
  const headers = lines.slice(1).map((line): [string, string] => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
  });
  return { method, target, version, headers, rest };
}

function header(head: Head, name: string): string | undefined {
  return head.headers.find(([key]) => key.toLowerCase() === name)?.[1];
}

/** The user and password of a Basic `Proxy-Authorization`, or undefined. */
function proxyCredentials(
  head: Head,
): { user: string; password: string } | undefined {
  const value = header(head, "proxy-authorization");
  const match = value?.match(/^Basic\s+([A-Za-z0-9+/=]+)$/i);
  if (!match) return undefined;
  let decoded: string;
  try {
    decoded = atob(match[1]);
  } catch {
    return undefined;
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) return { user: decoded, password: "" };
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/** `host:port` (IPv6 in brackets) to a hostname and port, or undefined when malformed. */
function splitHostPort(
  authority: string,
): { hostname: string; port: number } | undefined {
  const match = authority.match(/^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})$/);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return undefined;
  return { hostname: match[1] ?? match[2], port };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    written += await conn.write(bytes.subarray(written));
  }
}

async function answer(
  conn: Deno.Conn,
  status: number,
  reason: string,
  extra: string[] = [],
): Promise<void> {
  const body = `${reason}\n`;
  await writeAll(
    conn,
    encoder.encode(
      [
        `HTTP/1.1 ${status} ${reason}`,
        ...extra,
        "Content-Type: text/plain",
        `Content-Length: ${encoder.encode(body).length}`,
        "Connection: close",
        "",
        body,
      ].join("\r\n"),
    ),
  );
}

/** Copies `from` to `to` until `from` ends, then half-closes `to`; `copied` sees each chunk. */
async function pump(
  from: Deno.Conn,
  to: Deno.Conn,
  copied: (chunk: Uint8Array) => void,
): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const read = await from.read(buffer);
      if (read === null) break;
      await writeAll(to, buffer.subarray(0, read));
      copied(buffer.subarray(0, read));
    }
    await to.closeWrite().catch(() => {});
  } catch {
    // A side went away or the proxy is stopping; the caller closes both.
  }
}

/** The status code of the first response line in `bytes`, if it is there. */
function statusOf(bytes: Uint8Array): number | undefined {
  const match = decoder.decode(bytes.subarray(0, 32)).match(
    /^HTTP\/\d(?:\.\d)? (\d{3})/,
  );
  return match ? Number(match[1]) : undefined;
}

/**
 * Starts the proxy on a free port of 127.0.0.1.
 *
 * @param options Basic proxy credentials to require.
 * @returns The running proxy; dispose of it (or call `stop`) to stop it.
 *
 * @example Fetch through the proxy and see the request recorded
 * ```ts
 * import assert from "node:assert/strict";
 * import { startConnectProxy } from "./connect_proxy.ts";
 *
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
 *   new Response("hello"));
 * await using proxy = startConnectProxy();
 * using client = Deno.createHttpClient({ proxy: { url: proxy.url } });
 * const url = `http://127.0.0.1:${server.addr.port}/v2/`;
 * const response = await fetch(url, { client });
 * assert.equal(await response.text(), "hello");
 * assert.deepEqual(proxy.records.map((r) => [r.method, r.target, r.status]), [["GET", url, 200]]);
 * ```
 */
export function startConnectProxy(
  options: ConnectProxyOptions = {},
): ConnectProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const records: ProxyRecord[] = [];
  const open = new Set<Deno.Conn>();
  const handling = new Set<Promise<void>>();

  function track(conn: Deno.Conn): void {
    open.add(conn);
  }
  function close(conn: Deno.Conn): void {
    if (!open.delete(conn)) return;
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }

  /** Answers 407 when credentials are required and wrong; true when the request may go on. */
  async function authorized(
    client: Deno.Conn,
    record: ProxyRecord,
    given: { user: string; password: string } | undefined,
  ): Promise<boolean> {
    const users = options.users;
    if (users === undefined) return true;
    if (
      given !== undefined && Object.hasOwn(users, given.user) &&
      users[given.user] === given.password
    ) return true;
    record.status = 407;
    await answer(client, 407, "Proxy Authentication Required", [
      'Proxy-Authenticate: Basic realm="oci-test-proxy"',
    ]);
    return false;
  }

  async function connectUpstream(
    client: Deno.Conn,
    record: ProxyRecord,
    hostname: string,
    port: number,
  ): Promise<Deno.Conn | undefined> {
    if (!isLoopback(hostname)) {
      record.status = 502;
      await answer(client, 502, "Bad Gateway (tests reach loopback only)");
      return undefined;
    }
    try {
      const upstream = await Deno.connect({ hostname, port });
      track(upstream);
      const local = upstream.localAddr as Deno.NetAddr;
      record.upstream = local.hostname.includes(":")
        ? `[${local.hostname}]:${local.port}`
        : `${local.hostname}:${local.port}`;
      return upstream;
    } catch {
      record.status = 502;
      await answer(client, 502, "Bad Gateway (connection refused)");
      return undefined;
    }
  }

  async function tunnel(
    client: Deno.Conn,
    head: Head,
    record: ProxyRecord,
  ): Promise<void> {
    const authority = splitHostPort(head.target);
    if (authority === undefined) {
      record.status = 400;
      await answer(client, 400, "Bad Request (CONNECT needs host:port)");
      return;
    }
    const upstream = await connectUpstream(
      client,
      record,
      authority.hostname,
      authority.port,
    );
    if (upstream === undefined) return;
    record.status = 200;
    await writeAll(
      client,
      encoder.encode("HTTP/1.1 200 Connection Established\r\n\r\n"),
    );
    if (head.rest.length > 0) {
      await writeAll(upstream, head.rest);
      record.bytesUp += head.rest.length;
    }
    await Promise.all([
      pump(client, upstream, (chunk) => record.bytesUp += chunk.length),
      pump(upstream, client, (chunk) => record.bytesDown += chunk.length),
    ]);
    close(upstream);
  }

  async function forward(
    client: Deno.Conn,
    head: Head,
    record: ProxyRecord,
  ): Promise<void> {
    let url: URL;
    try {
      url = new URL(head.target);
    } catch {
      url = new URL("invalid:");
    }
    if (url.protocol !== "http:") {
      record.status = 400;
      await answer(client, 400, "Bad Request (not an absolute http:// URI)");
      return;
    }
    const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const upstream = await connectUpstream(
      client,
      record,
      hostname,
      Number(url.port || 80),
    );
    if (upstream === undefined) return;
    const hopByHop = new Set([
      "proxy-authorization",
      "proxy-connection",
      "connection",
      "keep-alive",
    ]);
    const lines = [
      `${head.method} ${url.pathname}${url.search} ${head.version}`,
      ...head.headers
        .filter(([key]) => !hopByHop.has(key.toLowerCase()))
        .map(([key, value]) => `${key}: ${value}`),
      "Connection: close",
      "",
      "",
    ];
    await writeAll(upstream, encoder.encode(lines.join("\r\n")));
    if (head.rest.length > 0) {
      await writeAll(upstream, head.rest);
      record.bytesUp += head.rest.length;
    }
    await Promise.all([
      pump(client, upstream, (chunk) => record.bytesUp += chunk.length),
      pump(upstream, client, (chunk) => {
        if (record.status === 0) record.status = statusOf(chunk) ?? 0;
        record.bytesDown += chunk.length;
      }).then(() => {
        // The registry closed after its answer: end the client's connection too.
        close(client);
      }),
    ]);
    close(upstream);
  }

  async function handle(client: Deno.Conn): Promise<void> {
    try {
      const head = await readHead(client);
      if (head === undefined) return;
      const given = proxyCredentials(head);
      const record: ProxyRecord = {
        method: head.method,
        target: head.target,
        user: given?.user,
        status: 0,
        bytesUp: 0,
        bytesDown: 0,
        upstream: undefined,
      };
      records.push(record);
      if (!await authorized(client, record, given)) return;
      if (head.method === "CONNECT") await tunnel(client, head, record);
      else await forward(client, head, record);
    } catch {
      // The client went away, or the proxy is stopping.
    } finally {
      close(client);
    }
  }

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      track(conn);
      const done: Promise<void> = handle(conn).finally(() =>
        handling.delete(done)
      );
      handling.add(done);
    }
  })();

  let stopping: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopping ??= (async () => {
      try {
        listener.close();
      } catch {
        // Already closed.
      }
      await accepting;
      for (const conn of [...open]) close(conn);
      await Promise.all([...handling]);
    })();
    return stopping;
  }

  const { port } = listener.addr as Deno.NetAddr;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    records,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
