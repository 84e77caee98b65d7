/**
 * The Worker of the parallel compressors ({@link ./block_pool.ts}): compresses the blocks it
 * is sent and sends each back under its sequence number.
 *
 * @module
 */
import { type BlockJob, compressBlock } from "./block_codec.ts";

/** A block to compress, as the main thread posts it. */
type Request = BlockJob & { readonly seq: number };

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<Request>) => void) | null;
  postMessage(message: unknown, transfer: Transferable[]): void;
};

scope.onmessage = ({ data: job }) => {
  try {
    // The output is a view of zlib's own buffer: the buffer is moved, and this Worker's
    // collector, which sees no memory pressure until 64 MiB of it, is left nothing.
    const output = compressBlock(job);
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
