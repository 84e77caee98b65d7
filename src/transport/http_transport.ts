/**
 * The bottom transport: every request (uploads, downloads, token requests, HEADs) goes through
 * our HTTP/1.1 client (`http1.ts`) over `Deno.connect` and `Deno.startTls`, so they all trust
 * the same roots and take the same route:
 *
 * - trust: Deno's roots (its store, `DENO_CERT`, `--cert`, `--unsafely-ignore-certificate-errors`
 *   when passed) plus the `caCerts`/`caFile` given;
 * - route: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY` (lower-case forms too), or the
 *   `proxy` given; HTTPS through a `CONNECT` tunnel.
 *
 * Why not `fetch`: Deno's `fetch` drops a caller's `Content-Length` when the body is a stream and
 * sends `Transfer-Encoding: chunked` instead (denoland/deno#24197, not fixed in Deno 2.9.6); the
 * distribution spec asks for `Content-Length` on a monolithic PUT, and some registries and
 * proxies refuse chunked uploads. A `Blob` body would keep the length but is read into memory.
 * `node:https`, the previous upload route, needed `--allow-sys`, ignored `DENO_CERT` once
 * `NODE_EXTRA_CA_CERTS` was set, ignored `--unsafely-ignore-certificate-errors` and bypassed
 * `HTTPS_PROXY`. Both paths enforce the {@linkcode Timeouts}.
 *
 * @module
 */
import { ConnectionPool, type OutgoingBody, sendHttp1 } from "./http1.ts";
import { proxyFor, type ProxySettings, proxySettingsFromEnv } from "./proxy.ts";
import { requestSource, type Transport } from "./request_body.ts";
import { resolveTimeouts, type Timeouts } from "./timeouts.ts";

/** Options of {@linkcode createHttpTransport}. */
export interface HttpTransportOptions {
  /**
   * How long a server may stay silent while connecting, before answering and between bytes.
   * @default {DEFAULT_TIMEOUTS}
   */
  readonly timeouts?: Timeouts;
  /**
   * PEM certificates to trust besides Deno's roots (its store, `DENO_CERT`, `--cert`), for a
   * registry or proxy signed by a private CA.
   */
  readonly caCerts?: readonly string[];
  /** A PEM file of certificates to trust besides Deno's roots (read on the first request). */
  readonly caFile?: string;
  /**
   * The proxies, or `false` to connect directly.
   * @default {proxySettingsFromEnv(): HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY, lower-case forms too}
   */
  readonly proxy?: ProxySettings | false;
}

/**
 * Builds the bottom transport, which sends one request without following redirects (the redirect
 * layer does that), over HTTP/1.1 with kept-alive connections: a body with a `BlobSource` (from
 * `createRequest`) streams out with its exact `Content-Length`. A server that stays silent
 * longer than the {@linkcode Timeouts} allow (connecting, before the response headers, not
 * reading the upload, between chunks of the response body while it is read) fails the request,
 * or the body's read, with a `TimeoutError`; the request is cancelled. The request's own signal
 * still aborts it.
 *
 * @param options The timeouts, extra trusted CAs, the proxies.
 * @returns The transport; a 3xx is returned as it is.
 * @throws {RangeError} When a timeout is negative.
 *
 * @example A server that sends headers and then nothing
 * ```ts
 * import assert from "node:assert/strict";
 * import { createHttpTransport } from "./http_transport.ts";
 * import { TimeoutError } from "./errors.ts";
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
 *   new Response(new ReadableStream({ start(c) { c.enqueue(new Uint8Array([1])); } })));
 * const transport = createHttpTransport({ timeouts: { idle: 100 } });
 * const response = await transport(new Request(`http://127.0.0.1:${server.addr.port}/v2/`));
 * const error = await response.arrayBuffer().catch((e) => e);
 * assert.ok(error instanceof TimeoutError);
 * assert.equal(error.phase, "body");
 * ```
 */
export function createHttpTransport(
  options: HttpTransportOptions = {},
): Transport {
  const timeouts = resolveTimeouts(options.timeouts);
  const proxy = options.proxy === false
    ? {}
    : options.proxy ?? proxySettingsFromEnv();
  const pool = new ConnectionPool();
  let trusted: Promise<readonly string[] | undefined> | undefined;
  const caCerts = () => trusted ??= loadCaCerts(options);
  return async function sendOne(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(
        `Cannot send ${request.method} ${request.url}: only http: and https: URLs are supported`,
      );
    }
    return sendHttp1(request, outgoingBody(request), {
      timeouts,
      caCerts: url.protocol === "https:" ? await caCerts() : undefined,
      proxy: proxyFor(url, proxy),
      pool,
    });
  };
}

/**
 * The CA file given cannot be read or holds no certificate: retrying cannot help.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CaFileError, createHttpTransport } from "./http_transport.ts";
 * const transport = createHttpTransport({ caFile: "/nonexistent/ca.pem" });
 * await assert.rejects(transport(new Request("https://127.0.0.1:1/v2/")), CaFileError);
 * ```
 */
export class CaFileError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong with the file.
   * @param options The cause.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CaFileError";
  }
}

/** The CAs of `caCerts` and `caFile` together; undefined when none is given. */
async function loadCaCerts(
  options: HttpTransportOptions,
): Promise<readonly string[] | undefined> {
  const certs = [...options.caCerts ?? []];
  if (options.caFile !== undefined) {
    let text: string;
    try {
      text = await Deno.readTextFile(options.caFile);
    } catch (error) {
      throw new CaFileError(
        `Cannot read the CA file ${options.caFile}: ${
          (error as Error).message
        }`,
        { cause: error },
      );
    }
    if (!text.includes("-----BEGIN CERTIFICATE-----")) {
      throw new CaFileError(
        `The CA file ${options.caFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      );
    }
    certs.push(text);
  }
  return certs.length > 0 ? certs : undefined;
}

/** A body with a source streams from it (re-opened if a kept-alive connection was stale). */
function outgoingBody(request: Request): OutgoingBody | undefined {
  const source = requestSource(request);
  if (source === undefined || request.body === null) return undefined;
  return {
    size: source.size,
    stream: request.body,
    reopen: () => source.open(),
  };
}

let withDefaults: Transport | undefined;

/**
 * The bottom transport with the default timeouts: {@linkcode createHttpTransport} with no
 * options.
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
  withDefaults ??= createHttpTransport();
  return withDefaults(request);
}

/** The default bottom transport, typed as a {@linkcode Transport}. */
export const DEFAULT_TRANSPORT: Transport = httpTransport;
