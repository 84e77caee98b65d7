/**
 * `oci catalog`: lists the repositories of a registry (`GET /v2/_catalog`, every page).
 *
 * @module
 */
import { listRepositories } from "../store/remote/catalog.ts";
import { registryTarget } from "./command.ts";
import type { Command } from "./command.ts";
import { UsageError } from "./context.ts";

/** The `catalog` command. */
export const catalog: Command = {
  name: "catalog",
  summary: "list the repositories of a registry",
  usage: "oci catalog <registry> [--page-size N]",
  examples: [
    "oci catalog 127.0.0.1:5000",
    "oci catalog registry.lan:5000 --plain-http --json",
  ],
  details:
    `Registries often restrict the catalog: distribution asks for the token scope
registry:catalog:*, Docker Hub and ghcr.io refuse it.`,
  flags: {
    "page-size": {
      type: "string",
      value: "N",
      description:
        "repositories asked for per page, Link pages followed to the end (default: the registry's)",
    },
  },
  positionals: 1,
  references: (args) => [`${args[0]}/catalog`],
  async run(context, [registryText], values) {
    if (registryText.includes("/") && !registryText.includes("://")) {
      throw new UsageError(
        `"${registryText}" is not a registry: give HOST[:PORT]`,
        "catalog",
      );
    }
    const ref = registryTarget(
      context.target(`${registryText.replace(/\/+$/, "")}/catalog`, "catalog"),
      "catalog",
    );
    let pageSize: number | undefined;
    if (values["page-size"] !== undefined) {
      pageSize = Number(values["page-size"]);
      if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
        throw new UsageError(
          `--page-size must be a positive integer, got "${
            values["page-size"]
          }"`,
          "catalog",
        );
      }
    }
    const repositories = await listRepositories(ref, {
      transport: context.transport,
      signal: context.signal,
      pageSize,
      ...context.retry,
    });
    context.result(
      { source: ref.registry, repositories },
      repositories.join("\n"),
    );
  },
};
