/**
 * A fault injector around a registry handler, for testing clients' retries and verification:
 * a seeded share of requests is refused with 429 or 503, or answered with a body that breaks
 * off, is cut short or has a byte flipped. (For faults on the wire in front of a real
 * registry, see `fault_proxy.ts`.)
 */
import type { RequestInfo } from "../../src/server/handler.ts";
import { seededRandom } from "./random.ts";

/** A fault {@linkcode withFaults} can inject. */
export type FaultKind = "429" | "503" | "reset" | "truncate" | "flip";

/** Faults to inject. */
export interface FaultOptions {
  /** Share of requests that fail, 0 to 1. */
  readonly rate: number;
  /** Seed of the pseudo-random choice, so that a run can be repeated. @default {1} */
  readonly seed?: number;
  /**
   * Which faults to pick from: `429` and `503` answer with `Retry-After: 0`, `reset` errors the
   * response body at once (the connection drops), `truncate` cuts a blob body in half, `flip`
   * changes one byte of a blob body.
   * @default {["429", "503", "reset", "truncate", "flip"]}
   */
  readonly kinds?: readonly FaultKind[];
  /** Told about every fault injected. */
  readonly onFault?: (kind: FaultKind, request: Request) => void;
}

/** A registry handler (from `createRegistry`), or anything with its shape. */
export type Handler = (
  request: Request,
  info?: RequestInfo,
) => Promise<Response>;

/**
 * Wraps a handler so that a seeded share of its answers are faults; the same seed gives the
 * same faults for the same requests.
 *
 * @example Every request refused with 503
 * ```ts
 * import assert from "node:assert/strict";
 * import { createRegistry } from "../../src/server/handler.ts";
 * import { withFaults } from "./faults.ts";
 * await using registry = createRegistry();
 * const faulty = withFaults(registry, { rate: 1, kinds: ["503"] });
 * const response = await faulty(new Request("http://registry.test/v2/"));
 * assert.equal(response.status, 503);
 * assert.equal(response.headers.get("retry-after"), "0");
 * await response.body?.cancel();
 * ```
 */
export function withFaults(handler: Handler, options: FaultOptions): Handler {
  const random = seededRandom(options.seed ?? 1);
  const kinds = options.kinds ?? ["429", "503", "reset", "truncate", "flip"];
  return async function faulty(
    request: Request,
    info?: RequestInfo,
  ): Promise<Response> {
    if (random() >= options.rate) return await handler(request, info);
    const kind = kinds[Math.floor(random() * kinds.length)];
    const isBlobGet = request.method === "GET" &&
      /\/blobs\/sha256:/.test(new URL(request.url).pathname);
    if (kind === "429" || kind === "503") {
      options.onFault?.(kind, request);
      await request.body?.cancel();
      return refusal(kind === "429" ? 429 : 503);
    }
    const response = await handler(request, info);
    if (response.body === null || (kind !== "reset" && !isBlobGet)) {
      return response;
    }
    options.onFault?.(kind, request);
    const reader = response.body.getReader();
    let sent = 0;
    const length = Number(response.headers.get("content-length") ?? 0);
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (kind === "reset") {
          await reader.cancel();
          controller.error(new Error("injected connection reset"));
          return;
        }
        const { value, done } = await reader.read();
        if (done) return controller.close();
        if (kind === "truncate" && sent + value.byteLength >= length / 2) {
          controller.enqueue(
            value.subarray(0, Math.max(0, Math.floor(length / 2) - sent)),
          );
          await reader.cancel();
          controller.error(new Error("injected truncation"));
          return;
        }
        if (kind === "flip" && sent === 0 && value.byteLength > 0) {
          const copy = value.slice();
          copy[0] ^= 0xff;
          sent += value.byteLength;
          return controller.enqueue(copy);
        }
        sent += value.byteLength;
        controller.enqueue(value);
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, {
      status: response.status,
      headers: response.headers,
    });
  };
}

/** A refusal a client should retry at once: the registry's error body, `Retry-After: 0`. */
function refusal(status: 429 | 503): Response {
  const code = status === 429 ? "TOOMANYREQUESTS" : "UNAVAILABLE";
  return Response.json(
    { errors: [{ code, message: "injected fault" }] },
    {
      status,
      headers: {
        "docker-distribution-api-version": "registry/2.0",
        "retry-after": "0",
      },
    },
  );
}
