/**
 * A hostile HTTP/1.1 server on raw TCP (`Deno.listen` on 127.0.0.1), for tests of timeouts: it
 * reads a request's head, lets a handler write whatever it likes (a full answer, headers and a
 * few bytes, nothing at all), and keeps the connection open for as long as the handler leaves it
 * so. Every connection is closed when the server is disposed.
 */

/** A request as the server read it: its head, and the body bytes that came with the head. */
export interface RawRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Headers;
  /** Bytes read past the head (the start of the body). */
  readonly rest: Uint8Array;
}

/** What a handler has to answer with. */
export interface RawExchange {
  readonly request: RawRequest;
  readonly conn: Deno.Conn;
  /** Writes text or bytes to the client. */
  write(data: string | Uint8Array): Promise<void>;
  /** Writes a whole response (`connection: close`) and closes the connection. */
  respond(
    status: number,
    body?: string | Uint8Array,
    headers?: Record<string, string>,
  ): Promise<void>;
  /** Reads the request body to its end (by `content-length`), without answering. */
  readBody(): Promise<Uint8Array>;
}

/** Handles one request; what it leaves unanswered stays unanswered until the server closes. */
export type RawHandler = (exchange: RawExchange) => Promise<void> | void;

/** The running server. */
export interface StallingServer extends AsyncDisposable {
  readonly port: number;
  /** `127.0.0.1:<port>`. */
  readonly host: string;
  /** The requests received, in order. */
  readonly requests: RawRequest[];
  /** Counts the requests whose path matches. */
  count(pattern: RegExp, method?: string): number;
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

const encoder = new TextEncoder();
const HEAD_END = encoder.encode("\r\n\r\n");

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

async function readHead(conn: Deno.Conn): Promise<RawRequest | undefined> {
  let buffered = new Uint8Array(0);
  for (;;) {
    const end = indexOfBytes(buffered, HEAD_END);
    if (end >= 0) {
      const lines = new TextDecoder().decode(buffered.subarray(0, end)).split(
        "\r\n",
      );
      const [method, path] = lines[0].split(" ");
      const headers = new Headers();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(":");
        if (colon > 0) {
          headers.append(
            line.slice(0, colon).trim(),
            line.slice(colon + 1).trim(),
          );
        }
      }
      return { method, path, headers, rest: buffered.subarray(end + 4) };
    }
    const chunk = new Uint8Array(64 * 1024);
    const n = await conn.read(chunk).catch(() => null);
    if (n === null) return undefined;
    const next = new Uint8Array(buffered.length + n);
    next.set(buffered);
    next.set(chunk.subarray(0, n), buffered.length);
    buffered = next;
  }
}

async function readBody(
  conn: Deno.Conn,
  request: RawRequest,
): Promise<Uint8Array> {
  const length = Number(request.headers.get("content-length") ?? "0");
  const body = new Uint8Array(length);
  body.set(request.rest.subarray(0, length));
  let filled = Math.min(length, request.rest.length);
  while (filled < length) {
    const n = await conn.read(body.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return body.subarray(0, filled);
}

/**
 * Starts the server.
 *
 * @param handler What to do with each request.
 * @returns The server; `await using` closes it.
 */
export function stallingServer(handler: RawHandler): StallingServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const requests: RawRequest[] = [];
  const handled: Promise<void>[] = [];
  const serve = async (conn: Deno.Conn) => {
    const request = await readHead(conn);
    if (request === undefined) return;
    requests.push(request);
    const exchange: RawExchange = {
      request,
      conn,
      write: async (data) => {
        const bytes = typeof data === "string" ? encoder.encode(data) : data;
        for (let done = 0; done < bytes.length;) {
          done += await conn.write(bytes.subarray(done));
        }
      },
      respond: async (status, body = "", headers = {}) => {
        const bytes = typeof body === "string" ? encoder.encode(body) : body;
        const head = [
          `HTTP/1.1 ${status} X`,
          `content-length: ${bytes.length}`,
          "connection: close",
        ];
        for (const [name, value] of Object.entries(headers)) {
          head.push(`${name}: ${value}`);
        }
        await exchange.write(`${head.join("\r\n")}\r\n\r\n`);
        if (request.method !== "HEAD") await exchange.write(bytes);
        conns.delete(conn);
        conn.close();
      },
      readBody: () => readBody(conn, request),
    };
    await handler(exchange);
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      handled.push(serve(conn).catch(() => {}));
    }
  })().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  const close = async () => {
    try {
      listener.close();
    } catch {
      // Closed already.
    }
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // Closed by a handler.
      }
    }
    conns.clear();
    await accepting;
    await Promise.all(handled);
  };
  return {
    port,
    host: `127.0.0.1:${port}`,
    requests,
    count: (pattern, method) =>
      requests.filter((r) =>
        pattern.test(r.path) && (method === undefined || r.method === method)
      ).length,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * Runs an operation that a stalling server may keep waiting forever: resolves with what it threw
 * (or undefined when it succeeded) and fails, aborting it, when it has not finished within
 * `limit` milliseconds. The limit only tells a hang from an answer; it is far above any timeout
 * the tests set.
 */
export async function settle(
  operation: (signal: AbortSignal) => Promise<unknown>,
  limit = 10_000,
): Promise<unknown> {
  const controller = new AbortController();
  const outcome = operation(controller.signal).then(
    () => ({ error: undefined }),
    (error) => ({ error }),
  );
  const first = await raceTimer(outcome, limit);
  if (first === "hung") {
    controller.abort(new Error("the attack kept us waiting"));
    // Let the abort land; an operation that ignores it is left to the server's close.
    await raceTimer(outcome, 2_000);
    throw new Error(
      `still waiting after ${
        limit / 1000
      } s: the stalled server kept the client waiting`,
    );
  }
  return first.error;
}

async function raceTimer<T>(
  promise: Promise<T>,
  ms: number,
): Promise<T | "hung"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<"hung">((resolve) => {
    timer = setTimeout(() => resolve("hung"), ms);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}
