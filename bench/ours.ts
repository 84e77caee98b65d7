/**
 * Our side of the single-operation benchmark cases, as a process (like the peers): sha256 of a
 * file, a verified blob download to a file, building a layer, extracting it.
 *
 * @module
 */
import {
  createLayer,
  createOpener,
  digestOfFile,
  extractLayer,
  fetchBlob,
  openLayout,
  parseReference,
} from "../mod.ts";

const [command, ...args] = Deno.args;
switch (command) {
  case "sha256": {
    // Streams the file through one reused buffer; the whole file is never in memory.
    console.log((await digestOfFile(args[0])).digest);
    break;
  }
  case "fetch-blob": {
    const [ref, digest, size, out] = args;
    const transport = createOpener({
      credentials: () => Promise.resolve(undefined),
    });
    const stream = await fetchBlob(parseReference(ref), digest, {
      transport,
      size: Number(size),
    });
    // fetchBlob's stream is a byte stream: read it into one reused 1 MiB buffer (a default
    // reader would allocate a new chunk per read).
    using file = await Deno.create(out);
    const reader = stream.getReader({ mode: "byob" });
    let buffer = new ArrayBuffer(1 << 20);
    for (;;) {
      const { value, done } = await reader.read(new Uint8Array(buffer));
      if (done) break;
      for (let offset = 0; offset < value.byteLength;) {
        offset += await file.write(value.subarray(offset));
      }
      buffer = value.buffer as ArrayBuffer;
    }
    console.log(digest);
    break;
  }
  case "create-layer": {
    const layer = await createLayer(args[0], await openLayout(args[1]));
    console.log(JSON.stringify(layer));
    break;
  }
  case "extract": {
    const result = await extractLayer(
      (await Deno.open(args[0])).readable,
      args[1],
    );
    console.log(result.uncompressedDigest);
    break;
  }
  default:
    console.error(`unknown case ${command}`);
    Deno.exit(2);
}
