/**
 * The Worker of {@linkcode decompressOffThread}: decompresses (gzip or zstd, with the same bounds
 * as on the main thread) the input the main thread sends when asked, and sends output
 * only as far as the main thread has granted (in bytes).
 *
 * @module
 */
import type { Hash } from "node:crypto";
import { type Compression, decompress } from "./compression.ts";

/** What the main thread sends. */
type Message =
  | {
    readonly type: "start";
    readonly compression: Compression;
    /** Whether to send the SHA-256 of all the output with "done". */
    readonly digest: boolean;
  }
  | { readonly type: "input"; readonly chunk: Uint8Array }
  | { readonly type: "end" }
  | { readonly type: "credit"; readonly bytes: number };

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<Message>) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
};

/** Output bytes the main thread has granted and not yet been sent. */
let credits = 0;
let wakeOutput: (() => void) | undefined;
/** Input the main thread sent ahead (a few chunks); each one taken asks for one more. */
const inputs: Message[] = [];
let wakeInput: (() => void) | undefined;

const input = new ReadableStream<Uint8Array>({
  async pull(controller) {
    while (inputs.length === 0) {
      await new Promise<void>((resolve) => wakeInput = resolve);
    }
    const message = inputs.shift()!;
    if (message.type === "input") {
      scope.postMessage({ type: "need" });
      controller.enqueue(message.chunk);
    } else controller.close();
  },
}, { highWaterMark: 0 });

async function run(compression: Compression, digest: boolean): Promise<void> {
  const reader = decompress(input, compression).getReader();
  // Loaded only when asked: node:crypto costs the Worker some 12 MiB of RSS (measured on
  // bench zeros-rss, a gzip layer, which does not ask).
  try {
    const hash: Hash | undefined = digest
      ? (await import("node:crypto")).createHash("sha256")
      : undefined;
    for (;;) {
      while (credits <= 0) {
        await new Promise<void>((resolve) => wakeOutput = resolve);
      }
      const { value, done } = await reader.read();
      if (done) break;
      credits -= value.byteLength;
      // Exactly the bytes sent, in order (before they are moved).
      hash?.update(value);
      // A chunk that owns its buffer is moved, not copied: the Worker's collector, which sees
      // no memory pressure, is left nothing to free. node:zlib's chunks are views of its own
      // output buffer, which must stay: they are copied (`new Uint8Array`, since a Buffer's
      // `slice` is a view too, and moving its buffer would detach the decoder's).
      const owned = value.byteOffset === 0 &&
          value.byteLength === value.buffer.byteLength
        ? value
        : new Uint8Array(value);
      scope.postMessage({ type: "output", chunk: owned }, [
        owned.buffer as ArrayBuffer,
      ]);
    }
    scope.postMessage({
      type: "done",
      digest: hash ? `sha256:${hash.digest("hex")}` : undefined,
    });
  } catch (error) {
    const { name, message } = error instanceof Error
      ? error
      : { name: "Error", message: String(error) };
    scope.postMessage({ type: "error", name, message });
  }
}

scope.onmessage = ({ data }) => {
  switch (data.type) {
    case "start":
      run(data.compression, data.digest);
      break;
    case "credit":
      credits += data.bytes;
      wakeOutput?.();
      wakeOutput = undefined;
      break;
    default:
      inputs.push(data);
      wakeInput?.();
      wakeInput = undefined;
  }
};
