/**
 * The one-line summary every reliability test prints, so CI logs show the figures the issue asks
 * for: operations, faults injected, retries, failures, corrupt files, leaked secrets.
 */

/** Figures of one reliability run. */
export interface ReliabilityFigures {
  operations: number;
  faults: number;
  retries: number;
  failures: number;
  corrupt: number;
  leaked: number;
  /** Anything else worth a figure (seconds, MiB...), printed after the fixed ones. */
  extra?: Record<string, number | string>;
}

/** Formats the summary line: `reliability <name>: operations=… corrupt=0 leaked=0 …`. */
export function formatSummary(
  name: string,
  figures: ReliabilityFigures,
): string {
  const fixed = [
    `operations=${figures.operations}`,
    `faults=${figures.faults}`,
    `retries=${figures.retries}`,
    `failures=${figures.failures}`,
    `corrupt=${figures.corrupt}`,
    `leaked=${figures.leaked}`,
  ];
  const extra = Object.entries(figures.extra ?? {}).map(([k, v]) =>
    `${k}=${v}`
  );
  return `reliability ${name}: ${[...fixed, ...extra].join(" ")}`;
}

/**
 * Prints the summary line on stderr-free stdout and, when `OCI_RELIABILITY_SUMMARY` names a file,
 * appends it there too (CI totals the lines).
 */
export async function reportSummary(
  name: string,
  figures: ReliabilityFigures,
): Promise<void> {
  const line = formatSummary(name, figures);
  console.log(line);
  const file = Deno.env.get("OCI_RELIABILITY_SUMMARY");
  if (file) await Deno.writeTextFile(file, line + "\n", { append: true });
}

/** Scale knob: `OCI_RELIABILITY_SCALE=0.25` shortens long runs (CI), 1 is the full run. */
export function reliabilityScale(): number {
  const value = Number(Deno.env.get("OCI_RELIABILITY_SCALE") ?? "1");
  return Number.isFinite(value) && value > 0 ? value : 1;
}
