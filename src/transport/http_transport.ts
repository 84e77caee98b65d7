/**
 * The bottom transport: `fetch` for everything, except streamed uploads, which go through
 * `node:http`/`node:https` so that they carry `Content-Length`.
 *
 * Deno's `fetch` drops a caller's `Content-Length` when the body is a stream and sends
 * `Transfer-Encoding: chunked` instead; the distribution spec asks for `Content-Length` on a
 * monolithic PUT, and some registries and proxies refuse chunked uploads.
 *
 * @module
 */
import { createBufferFiller } from "../bytes.ts";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { requestSource, type Transport } from "./request_body.ts";

/** Statuses whose responses never have a body. */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * Sends one request without following redirects (the redirect layer does that): streamed
 * bodies made by `createRequest` with a `BlobSource` go out with `Content-Length` through
 * `node:http`, everything else through `fetch`.
 *
 * @param request The request.
 * @returns The response; a 3xx is returned as it is.
 *
 * @example Send a request to a local server
 * ```ts
 * import assert from "node:assert/strict";
 * import { httpTransport } from "./http_transport.ts";
 * import { createRequest, fileSource } from "./request_body.ts";
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) =>
 *   new Response(request.headers.get("content-length")));
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "0123456789");
 * const url = `http://127.0.0.1:${server.addr.port}/upload`;
 * const response = await httpTransport(createRequest(url, { method: "PUT", body: await fileSource(path) }));
 * assert.equal(await response.text(), "10");
 * await Deno.remove(path);
 * ```
 */
export function httpTransport(request: Request): Promise<Response> {
  const source = requestSource(request);
  if (source && request.body !== null) {
    return sendWithContentLength(request, source.size);
  }
  return fetch(request, { redirect: "manual" });
}

function sendWithContentLength(
  request: Request,
  size: number,
): Promise<Response> {
  const url = new URL(request.url);
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const headers: Record<string, string> = {};
  request.headers.forEach((value, key) => {
    headers[key] = value;
  });
  headers["content-length"] = String(size);
  delete headers["transfer-encoding"];
  return new Promise<Response>((resolve, reject) => {
    const outgoing = send(url, {
      method: request.method,
      headers,
      signal: request.signal,
    }, (incoming: IncomingMessage) => {
      resolve(toResponse(request, incoming));
    });
    outgoing.on("error", (error: Error) => {
      reject(
        request.signal.aborted ? request.signal.reason : new TypeError(
          `Cannot send ${request.method} ${url.origin}${url.pathname}: ${error.message}`,
          { cause: error },
        ),
      );
    });
    writeBody(request.body!, outgoing, size).catch((error) => {
      outgoing.destroy(error);
    });
  });
}

/** Upload bodies are read this much at a time, into a few reused buffers. */
const UPLOAD_CHUNK_SIZE = 1 << 20;

async function writeBody(
  body: ReadableStream<Uint8Array>,
  outgoing: ReturnType<typeof httpRequest>,
  size: number,
): Promise<void> {
  // Buffers go back to the pool once node:http has flushed them, so an upload holds two or
  // three 1 MiB buffers however large it is (a new chunk per read left the GC behind).
  const filler = createBufferFiller(body);
  const pool: ArrayBuffer[] = [];
  let sent = 0;
  for (;;) {
    const buffer = pool.pop() ?? new ArrayBuffer(UPLOAD_CHUNK_SIZE);
    const chunk = await filler.fill(new Uint8Array(buffer));
    if (chunk.byteLength === 0) break;
    sent += chunk.byteLength;
    if (sent > size) {
      await filler.cancel().catch(() => {});
      throw new RangeError(
        `Cannot upload: the body is longer than its declared size ${size}`,
      );
    }
    const flushed = outgoing.write(chunk, () => pool.push(chunk.buffer));
    if (!flushed) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          outgoing.off("error", onError);
          resolve();
        };
        const onError = (error: Error) => {
          outgoing.off("drain", onDrain);
          reject(error);
        };
        outgoing.once("drain", onDrain);
        outgoing.once("error", onError);
      });
    }
  }
  if (sent !== size) {
    throw new RangeError(
      `Cannot upload: the body has ${sent} bytes but its declared size is ${size}`,
    );
  }
  outgoing.end();
}

function toResponse(request: Request, incoming: IncomingMessage): Response {
  const headers = new Headers();
  for (const [key, value] of Object.entries(incoming.headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) {
      headers.append(key, item);
    }
  }
  const status = incoming.statusCode ?? 0;
  const empty = request.method === "HEAD" || NULL_BODY_STATUSES.has(status);
  if (empty) incoming.resume();
  const body = empty
    ? null
    : Readable.toWeb(incoming) as unknown as ReadableStream<Uint8Array>;
  const response = new Response(body, {
    status,
    statusText: incoming.statusMessage ?? "",
    headers,
  });
  Object.defineProperty(response, "url", { value: request.url });
  return response;
}

/** The default bottom transport, typed as a {@linkcode Transport}. */
export const DEFAULT_TRANSPORT: Transport = httpTransport;
