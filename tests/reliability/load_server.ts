/**
 * The embedded registry in a process of its own, for the load test (tests/reliability/load_test.ts):
 * `deno run -A tests/reliability/load_server.ts --root DIR [--port N] [--upload-timeout MS]`.
 *
 * Prints `{"url": …, "host": …, "pid": …}` on one stdout line once it listens. Unhandled
 * rejections and uncaught errors are not fatal here: each is counted and described on stderr,
 * so that one run reports them all. When stdin closes, the server shuts down (in-flight requests
 * finish), prints `{"unhandled": N}` on stdout and exits with 0, or with 3 when N > 0. With
 * `OCI_LOAD_MEMORY_LOG=FILE`, `Deno.memoryUsage()` is appended to FILE every 2 s (to tell a heap
 * leak from allocator growth).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { serveRegistry } from "../../src/server/serve.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    root: { type: "string" },
    port: { type: "string", default: "0" },
    hostname: { type: "string", default: "127.0.0.1" },
    "upload-timeout": { type: "string" },
  },
});
if (values.root === undefined) {
  console.error("usage: load_server.ts --root DIR [--port N]");
  Deno.exit(2);
}

let unhandled = 0;
globalThis.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  unhandled++;
  console.error("unhandled rejection:", event.reason);
});
globalThis.addEventListener("error", (event) => {
  event.preventDefault();
  unhandled++;
  console.error("uncaught error:", event.error ?? event.message);
});

const server = await serveRegistry({
  root: values.root,
  hostname: values.hostname,
  port: Number(values.port),
  uploadTimeout: values["upload-timeout"] === undefined
    ? undefined
    : Number(values["upload-timeout"]),
});
console.log(
  JSON.stringify({ url: server.url, host: server.host, pid: Deno.pid }),
);

const memoryLog = Deno.env.get("OCI_LOAD_MEMORY_LOG");
if (memoryLog) {
  setInterval(
    () =>
      Deno.writeTextFileSync(
        memoryLog,
        JSON.stringify(Deno.memoryUsage()) + "\n",
        { append: true },
      ),
    2000,
  );
}
// Stdin closing is the signal to stop: the parent closes it, or dies.
for await (const _ of Deno.stdin.readable) { /* ignore input */ }
await server.shutdown();
console.log(JSON.stringify({ unhandled }));
Deno.exit(unhandled > 0 ? 3 : 0);
