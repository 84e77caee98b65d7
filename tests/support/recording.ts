/**
 * An opener over the real transport (or an in-process test registry's handler) that records
 * `METHOD host/path?query STATUS` per request.
 */
import { createOpener } from "../../src/transport/opener.ts";
import type { Transport } from "../../src/transport/request_body.ts";
import { registryTransport } from "./in_process.ts";

export function recordingOpener(): { log: string[]; transport: Transport } {
  const log: string[] = [];
  const transport: Transport = async (request) => {
    const response = await registryTransport(request);
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
