/**
 * Our side of the single-operation benchmark cases, as a process (like the peers): sha256 of a
 * file, a verified blob download into a layout, building a layer, extracting it.
 *
 * @module
 */
import {
  type Compression,
  createLayer,
  createOpener,
  digestOfFile,
  extractLayer,
  openLayout,
  parseReference,
  remoteStore,
} from "../mod.ts";
import { copyBlobs } from "../src/image/copy.ts";

const [command, ...args] = Deno.args;
switch (command) {
  case "sha256": {
    // Streams the file through one reused buffer; the whole file is never in memory.
    console.log((await digestOfFile(args[0])).digest);
    break;
  }
  case "fetch-blob": {
    // A verified download into a layout (temporary file, hashed while it arrives, synced,
    // renamed): what pull's copy into the stage does for every blob.
    const [ref, digest, size, out] = args;
    const transport = createOpener({
      credentials: () => Promise.resolve(undefined),
    });
    const layout = await openLayout(out);
    await copyBlobs(remoteStore(parseReference(ref), { transport }), layout, [{
      mediaType: "application/octet-stream",
      digest,
      size: Number(size),
    }]);
    console.log(`${digest} ${layout.blobPath(digest)}`);
    break;
  }
  case "create-layer": {
    // create-layer TREE STAGE [gzip|zstd|none]
    const layer = await createLayer(args[0], await openLayout(args[1]), {
      compression: (args[2] ?? "gzip") as Compression,
    });
    console.log(JSON.stringify(layer));
    break;
  }
  case "extract": {
    // extract LAYER TARGET [gzip|zstd|none]
    const result = await extractLayer(
      (await Deno.open(args[0])).readable,
      args[1],
      { compression: (args[2] ?? "gzip") as Compression },
    );
    console.log(result.uncompressedDigest);
    break;
  }
  default:
    console.error(`unknown case ${command}`);
    Deno.exit(2);
}
