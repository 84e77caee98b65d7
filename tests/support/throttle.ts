/**
 * A registry on 127.0.0.1 whose blob downloads are throttled: the body goes out in 64 KiB
 * pieces, paced so that all downloads together move about `bytesPerSecond`.
 *
 * @module
 */
import type { RegistryHandler } from "../../src/server/handler.ts";

const PIECE = 64 * 1024;

/** A throttled registry; dispose to stop it. */
export interface ThrottledRegistry extends AsyncDisposable {
  /** `127.0.0.1:PORT`. */
  readonly host: string;
}

/** Serves `handler` on a free port, blob GET bodies paced to `bytesPerSecond` in all. */
export function throttledRegistry(
  handler: RegistryHandler | ((request: Request) => Promise<Response>),
  bytesPerSecond: number,
): ThrottledRegistry {
  let next = 0;
  /** Waits for the next slot of the shared budget. */
  const slot = async () => {
    const now = performance.now();
    next = Math.max(next, now) + (PIECE / bytesPerSecond) * 1000;
    await new Promise((resolve) => setTimeout(resolve, next - now));
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const response = await handler(request);
      const blob = request.method === "GET" &&
        new URL(request.url).pathname.includes("/blobs/");
      if (!blob || response.body === null) return response;
      const bytes = new Uint8Array(await response.arrayBuffer());
      let at = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (at >= bytes.length) return controller.close();
          await slot();
          controller.enqueue(bytes.subarray(at, at + PIECE));
          at += PIECE;
        },
      });
      return new Response(body, response);
    },
  );
  return {
    host: `127.0.0.1:${server.addr.port}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}
