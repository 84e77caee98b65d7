/** An opener over the real transport that records `METHOD host/path?query STATUS` per request. */
import { createOpener } from "../../src/transport/opener.ts";
import { httpTransport } from "../../src/transport/http_transport.ts";
import type { Transport } from "../../src/transport/request_body.ts";

export function recordingOpener(): { log: string[]; transport: Transport } {
  const log: string[] = [];
  const transport: Transport = async (request) => {
    const response = await httpTransport(request);
    const url = new URL(request.url);
    log.push(
      `${request.method} ${url.host}${url.pathname}${url.search} ${response.status}`,
    );
    return response;
  };
  return {
    log,
    transport: createOpener({
      transport,
      credentials: () => Promise.resolve(undefined),
    }),
  };
}
