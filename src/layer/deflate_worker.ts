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
    const output = deflateBlock(job);
    const copy = output.byteOffset === 0 &&
        output.byteLength === output.buffer.byteLength
      ? output
      : output.slice();
    // The block's buffer goes back too, to be filled again: fewer buffers waiting for the
    // collector.
    const input = job.data.buffer as ArrayBuffer;
    scope.postMessage({ seq: job.seq, output: copy, input }, [
      copy.buffer as ArrayBuffer,
      input,
    ]);
  } catch (error) {
    scope.postMessage({ seq: job.seq, error: String(error) }, []);
  }
};
