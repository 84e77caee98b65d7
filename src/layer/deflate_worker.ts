/**
 * The Worker of {@linkcode parallelGzip}: deflates the blocks it is sent and sends each back
 * under its sequence number.
 *
 * @module
 */
import { deflateBlock, type DeflateJob } from "./deflate_block.ts";

/** A block to deflate, as the main thread posts it. */
interface Request extends DeflateJob {
  readonly seq: number;
}

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<Request>) => void) | null;
  postMessage(message: unknown, transfer: Transferable[]): void;
};

scope.onmessage = ({ data: job }) => {
  try {
    // The output is a view of zlib's own buffer: the buffer is moved, and this Worker's
    // collector, which sees no memory pressure until 64 MiB of it, is left nothing.
    const output = deflateBlock(job);
    // The block's buffer goes back too, to be filled again: fewer buffers waiting for the
    // collector.
    const input = job.data.buffer as ArrayBuffer;
    scope.postMessage({ seq: job.seq, output, input }, [
      output.buffer as ArrayBuffer,
      input,
    ]);
  } catch (error) {
    scope.postMessage({ seq: job.seq, error: String(error) }, []);
  }
};
