/**
 * Run as a subprocess by the decompression attacks: extracts a small warm-up layer (so that
 * the code is loaded and its steady state reached), reads the kernel's peak RSS (`VmHWM`),
 * resets the kernel's peak RSS (`VmHWM`, via `/proc/self/clear_refs`) to the current RSS,
 * extracts the layer under test, and prints the RSS before and the peak after, with the
 * outcome, as JSON. The kernel's high-water mark needs no sampling: no spike is missed.
 *
 * Usage: `deno run --allow-all extract_peak.ts WARMUP LAYER TARGET [gzip|zstd]` (Deno asks
 * for all permissions to write `/proc/self/clear_refs`); both layers are compressed so (gzip
 * unless said).
 *
 * @module
 */
import { extractLayer } from "../../src/layer/extract_layer.ts";
import type { Compression } from "../../src/layer/compression.ts";

async function statusKiB(field: "VmHWM" | "VmRSS"): Promise<number> {
  const status = await Deno.readTextFile("/proc/self/status");
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]);
}

const [warmup, layer, target, compressionArg] = Deno.args;
const compression = (compressionArg ?? "gzip") as Compression;
await extractLayer((await Deno.open(warmup)).readable, `${target}-warmup`, {
  compression,
});
// "5" resets the peak RSS to the current RSS (Linux 4.0 and later).
await Deno.writeTextFile("/proc/self/clear_refs", "5");
const before = await statusKiB("VmRSS");
let error: { name: string; message: string } | undefined;
try {
  await extractLayer((await Deno.open(layer)).readable, target, {
    compression,
  });
} catch (e) {
  error = { name: (e as Error).name, message: (e as Error).message };
}
console.log(JSON.stringify({ before, after: await statusKiB("VmHWM"), error }));
