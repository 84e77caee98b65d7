/**
 * Helpers for the bad-input tables (issue 7, item 3) spread over the tests of the modules they
 * exercise: an opener over an in-process handler, endless bodies, a registry asking for auth, and
 * sample manifests. Every bad input must end in a typed error whose message names what was wrong;
 * a bare TypeError, SyntaxError or RangeError escaping from our code is a bug.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseReference } from "../../src/oci/reference.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { createOpener } from "../../src/transport/opener.ts";
import type { Transport } from "../../src/transport/request_body.ts";
import { OCI_MANIFEST_MEDIA_TYPE } from "../../src/oci/media_types.ts";
import { staticCredentials } from "../../src/transport/credentials.ts";

/** The registry the scripted openers pretend to be. */
export const REGISTRY = "http://127.0.0.1:5000";
/** The token realm {@link challenging} registries name. */
export const REALM = "http://127.0.0.1:5000/token";
/** The reference the tables read. */
export const REF = parseReference("127.0.0.1:5000/app:v1");
/** One mebibyte. */
export const MiB = 1024 * 1024;

/** UTF-8. */
export const encoder = new TextEncoder();

/** No bare built-in error may escape: only our typed errors (which may extend them). */
export function assertTyped(
  error: unknown,
  type: abstract new (...args: never[]) => Error,
  ...patterns: RegExp[]
): true {
  assert.ok(
    error instanceof type,
    `expected ${type.name}, got ${(error as Error)?.name}: ${error}`,
  );
  for (const pattern of patterns) assert.match(error.message, pattern);
  return true;
}

/** An opener over an in-process handler: no socket, no retries, no credentials. */
export function openerOver(
  handler: (request: Request) => Response | Promise<Response>,
  credentials?: { username: string; password: string },
): { transport: Transport; requests: string[] } {
  const requests: string[] = [];
  const transport = createOpener({
    transport: async (request) => {
      requests.push(`${request.method} ${new URL(request.url).pathname}`);
      return await handler(request);
    },
    credentials: credentials
      ? staticCredentials(credentials)
      : () => Promise.resolve(undefined),
    retry: false,
  });
  return { transport, requests };
}

/** A body that yields `chunk` forever (or up to `limit` bytes), counting what was pulled. */
export function endlessBody(
  chunk: Uint8Array,
  limit = Infinity,
): { body: ReadableStream<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled >= limit) return controller.close();
      pulled += chunk.byteLength;
      controller.enqueue(chunk.slice());
    },
  });
  return { body, pulled: () => pulled };
}

/** A registry asking for auth with `challenge`, whose token server answers `token()`. */
export function challenging(
  challenge: string | null,
  token: () => Response = () => Response.json({ token: "good" }),
  credentials?: { username: string; password: string },
) {
  let tokenRequests = 0;
  const opener = openerOver((request) => {
    const url = new URL(request.url);
    if (url.pathname === "/token") {
      tokenRequests++;
      return token();
    }
    const authorization = request.headers.get("authorization");
    if (
      authorization === "Bearer good" ||
      authorization === `Basic ${btoa("u:right")}`
    ) {
      return new Response("ok");
    }
    return Response.json({
      errors: [{ code: "UNAUTHORIZED", message: "authentication required" }],
    }, {
      status: 401,
      headers: challenge === null ? {} : { "www-authenticate": challenge },
    });
  }, credentials);
  return { ...opener, tokenRequests: () => tokenRequests };
}

/** GET the manifest `app:v1` through `transport`. */
export async function get(transport: Transport): Promise<Response> {
  return await transport(new Request(`${REGISTRY}/v2/app/manifests/v1`));
}

/** A config descriptor (of `{}`). */
export const CONFIG = {
  mediaType: "application/vnd.oci.image.config.v1+json",
  digest: digestOf("{}"),
  size: 2,
};
/** A layer descriptor. */
export const LAYER = {
  mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
  digest: digestOf("layer"),
  size: 5,
};
/** A valid OCI image manifest. */
export const GOOD_MANIFEST = {
  schemaVersion: 2,
  mediaType: OCI_MANIFEST_MEDIA_TYPE,
  config: CONFIG,
  layers: [LAYER],
};

/** A registry serving `body` for every manifest, with `type` as Content-Type. */
export function serving(
  body: BodyInit | null,
  type: string | null = OCI_MANIFEST_MEDIA_TYPE,
) {
  // Bytes, not a string: a string body would get a text/plain Content-Type.
  return openerOver(() =>
    new Response(typeof body === "string" ? encoder.encode(body) : body, {
      headers: type === null ? {} : { "content-type": type },
    })
  );
}

/** JSON text of `value`. */
export const json = (value: unknown) => JSON.stringify(value);

/** A temporary OCI layout, removed afterwards. */
export async function withLayoutDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
