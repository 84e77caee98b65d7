/**
 * The `--annotation K=V` flag's values as a record, shared by the commands that take it.
 *
 * @module
 */
import { UsageError } from "./context.ts";

/** Reads repeated `--annotation KEY=VALUE` values; a value without `=` is a usage error. */
export function annotationsFlag(
  values: unknown,
  command: string,
): Record<string, string> {
  const annotations: Record<string, string> = {};
  for (const pair of (values as string[] | undefined) ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) {
      throw new UsageError(
        `--annotation needs KEY=VALUE, got "${pair}"`,
        command,
      );
    }
    annotations[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return annotations;
}
