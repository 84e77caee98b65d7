/**
 * Every command of the CLI by name, in the order the help lists them; each lives in its own
 * file (push.ts, pull.ts, copy.ts, inspect.ts, tags.ts, serve.ts, version.ts).
 *
 * @module
 */
import type { Command } from "./command.ts";
import { push } from "./push.ts";
import { pull } from "./pull.ts";
import { copy } from "./copy.ts";
import { inspect } from "./inspect.ts";
import { tags } from "./tags.ts";
import { serve } from "./serve.ts";
import { version } from "./version.ts";
import { attach } from "./attach.ts";
import { discover } from "./discover.ts";
import { deleteCommand } from "./delete.ts";
import { tag } from "./tag.ts";
import { digest } from "./digest.ts";
import { manifest } from "./manifest.ts";
import { blob } from "./blob.ts";
import { catalog } from "./catalog.ts";

/** Every command, by name. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  push,
  pull,
  copy,
  inspect,
  tags,
  tag,
  digest,
  manifest,
  blob,
  attach,
  discover,
  delete: deleteCommand,
  catalog,
  serve,
  version,
};
