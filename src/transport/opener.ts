/**
 * The opener: `fetch` composed with redirects, retry and authentication. Each layer is also
 * exported alone, so callers can build their own stack or swap the bottom transport.
 *
 * @module
 */
import { type AuthEvent, withAuth } from "./auth.ts";
import { type CredentialProvider, defaultCredentials } from "./credentials.ts";
import { createHttpTransport } from "./http_transport.ts";
import { withNetworkErrors } from "./network_errors.ts";
import type { ProxySettings } from "./proxy.ts";
import { withRedirects } from "./redirects.ts";
import type { Transport } from "./request_body.ts";
import { type RetryPolicy, withRetry } from "./retry.ts";
import type { Timeouts } from "./timeouts.ts";

/** Options of {@linkcode createOpener}. */
export interface OpenerOptions {
  /**
   * The bottom transport, which sends one request and returns redirects as they are. Swap it
   * for an in-process registry handler or a fault injector in tests.
   * @default {httpTransport}
   */
  readonly transport?: Transport;
  /**
   * How long a server may stay silent (connecting, before answering, between bytes) before a
   * request fails with a `TimeoutError`, which is retried like any network error. Applies to the
   * default transport; a `transport` given enforces its own.
   * @default {DEFAULT_TIMEOUTS}
   */
  readonly timeouts?: Timeouts;
  /**
   * PEM certificates to trust besides Deno's roots (its store, `DENO_CERT`, `--cert`), for every
   * request: uploads, downloads, token requests. Applies to the default transport.
   */
  readonly caCerts?: readonly string[];
  /** A PEM file of certificates to trust besides Deno's roots. Applies to the default transport. */
  readonly caFile?: string;
  /**
   * The proxies every request goes through, or `false` for none. Applies to the default
   * transport.
   * @default {proxySettingsFromEnv(): HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY, lower-case forms too}
   */
  readonly proxy?: ProxySettings | false;
  /**
   * Where credentials come from.
   * @default {defaultCredentials(): OCI_USERNAME/OCI_PASSWORD, then Docker's config.json}
   */
  readonly credentials?: CredentialProvider;
  /**
   * Retry policy, or `false` for no retries.
   * @default {DEFAULT_RETRY_POLICY}
   */
  readonly retry?: RetryPolicy | false;
  /** Told about challenges answered and tokens requested. */
  readonly onAuth?: (event: AuthEvent) => void;
  /**
   * Sent as `User-Agent` when the request has none.
   * @default {"oci/0.1"}
   */
  readonly userAgent?: string;
}

/**
 * Builds the opener every registry operation uses: authentication on the outside (one login per
 * registry and scope), then retries of transient failures (token requests included), then
 * redirects, then the transport, whose failures become `NetworkError`s that name the request
 * and the cause (see `withNetworkErrors`).
 *
 * @param options Transport, timeouts, credentials, retry policy and callbacks.
 * @returns A function with the shape of `fetch`.
 *
 * @example An opener over an in-process handler
 * ```ts
 * import assert from "node:assert/strict";
 * import { createOpener } from "./opener.ts";
 * const opener = createOpener({
 *   transport: (request) => Promise.resolve(new Response(request.headers.get("user-agent"))),
 *   credentials: () => Promise.resolve(undefined),
 * });
 * assert.equal(await (await opener(new Request("http://127.0.0.1:5000/v2/"))).text(), "oci/0.1");
 * ```
 */
export function createOpener(options: OpenerOptions = {}): Transport {
  const userAgent = options.userAgent ?? "oci/0.1";
  let transport = withRedirects(
    withNetworkErrors(
      options.transport ?? createHttpTransport({
        timeouts: options.timeouts,
        caCerts: options.caCerts,
        caFile: options.caFile,
        proxy: options.proxy,
      }),
    ),
  );
  if (options.retry !== false) transport = withRetry(transport, options.retry);
  const authenticated = withAuth(transport, {
    credentials: options.credentials ?? defaultCredentials(),
    onEvent: options.onAuth,
  });
  return function open(request: Request): Promise<Response> {
    if (!request.headers.has("user-agent")) {
      request.headers.set("user-agent", userAgent);
    }
    return authenticated(request);
  };
}

let shared: Transport | undefined;

/**
 * The opener registry operations use when none is given: {@linkcode createOpener} with its
 * defaults, created on first use and shared, so that tokens are reused across operations.
 *
 * @returns The shared opener.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultOpener } from "./opener.ts";
 * assert.equal(defaultOpener(), defaultOpener());
 * ```
 */
export function defaultOpener(): Transport {
  shared ??= createOpener();
  return shared;
}
