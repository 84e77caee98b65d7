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

/** Every command, by name. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  push,
  pull,
  copy,
  inspect,
  tags,
  serve,
  version,
};
