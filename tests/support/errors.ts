/** What an error shows anyone who looks, for audits of leaked secrets and failure reports. */

/**
 * Everything an error could show: its inspection, and for it and each cause its text, stack
 * and own fields as JSON.
 */
export function everythingAbout(error: unknown): string {
  const parts: string[] = [Deno.inspect(error, { depth: 10 })];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 8; depth++) {
    if (!(current instanceof Error)) {
      parts.push(String(current));
      break;
    }
    parts.push(String(current), current.stack ?? "");
    try {
      parts.push(JSON.stringify(current));
    } catch { /* cyclic: the fields are in the stack and message */ }
    current = current.cause;
  }
  return parts.join("\n");
}
