/**
 * `oci serve`: runs the embedded registry (in memory, or over OCI image layouts with
 * `--root`, behind users and Bearer tokens with `--auth`/`--token`) until Ctrl-C.
 *
 * @module
 */
import { serveRegistry } from "../server/serve.ts";
import type { RegistryAuthOptions } from "../server/auth.ts";
import { UsageError } from "./context.ts";
import type { Command } from "./command.ts";

/** The `serve` command. */
export const serve: Command = {
  name: "serve",
  summary: "run the embedded registry until Ctrl-C",
  usage:
    "oci serve [--port N] [--hostname H] [--root DIR] [--auth FILE [--token]]",
  examples: [
    "oci serve --port 5000",
    "oci serve --port 5000 --root ./registry   # content kept as OCI image layouts",
    "oci serve --auth users.txt --token        # users.txt: user:{PBKDF2}… lines; Bearer tokens from /token",
  ],
  flags: {
    port: {
      type: "string",
      value: "N",
      description: "the port to listen on, 0 for any free one (default 5000)",
    },
    hostname: {
      type: "string",
      value: "H",
      description: "the address to listen on (default 127.0.0.1)",
    },
    root: {
      type: "string",
      value: "DIR",
      description:
        "keep the content on disk, one OCI image layout per repository under DIR (default: in memory, gone when it stops)",
    },
    auth: {
      type: "string",
      value: "FILE",
      description:
        "require these users: lines of user:{PBKDF2}…, {SHA}… or {PLAIN}… (default: anyone may push and pull)",
    },
    token: {
      type: "boolean",
      description:
        "with --auth: Bearer tokens from /token, as Docker Hub and ghcr.io do (default: Basic)",
    },
  },
  positionals: 0,
  async run(context, _args, values) {
    const port = values.port === undefined ? 5000 : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new UsageError(
        `--port must be 0..65535, got "${values.port}"`,
        "serve",
      );
    }
    let auth: RegistryAuthOptions | undefined;
    if (values.auth !== undefined) {
      const users: Record<string, string> = {};
      const text = await Deno.readTextFile(String(values.auth));
      for (const line of text.split("\n").map((l) => l.trim())) {
        if (line === "" || line.startsWith("#")) continue;
        const colon = line.indexOf(":");
        if (colon <= 0) {
          throw new UsageError(
            `${values.auth}: every line must be user:{PBKDF2}…, {SHA}… or {PLAIN}…`,
            "serve",
          );
        }
        users[line.slice(0, colon)] = line.slice(colon + 1);
      }
      auth = { users, ...(values.token ? { token: {} } : {}) };
    } else if (values.token) {
      throw new UsageError("--token needs --auth FILE", "serve");
    }
    const server = await serveRegistry({
      auth,
      port,
      hostname: values.hostname === undefined
        ? "127.0.0.1"
        : String(values.hostname),
      root: values.root === undefined ? undefined : String(values.root),
      signal: context.signal,
    });
    context.result(
      { url: server.url, host: server.host, root: values.root ?? null },
      `Serving an OCI registry at ${server.url}${
        values.root === undefined
          ? " (in memory)"
          : ` (layouts in ${values.root})`
      }; Ctrl-C stops it`,
    );
    await new Promise<void>((resolve) => {
      if (context.signal.aborted) resolve();
      context.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await server.shutdown().catch(() => {});
  },
};
