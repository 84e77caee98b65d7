// The progress display's rendering, on an injected clock.
// deno-lint-ignore-file no-control-regex
import assert from "node:assert/strict";
import { createProgressDisplay, rateOf } from "../../src/cli/progress.ts";

const MiB = 1024 * 1024;
const blob = (n: number, size = 4 * MiB) => ({
  mediaType: "application/octet-stream",
  digest: `sha256:${String(n).repeat(64)}`,
  size,
});

/** A display on a fake clock, and what it wrote. */
function fake(mode: "tty" | "plain" | "quiet") {
  const out: string[] = [];
  const clock = { t: 0 };
  const display = createProgressDisplay(
    mode,
    (s) => out.push(s),
    () => clock.t,
  );
  return { out, clock, display };
}

Deno.test("progress: no rate before 0.5 s of an attempt, and a retry starts the rate afresh", () => {
  assert.equal(rateOf([[0, 0], [499, 10]]), undefined);
  const { out, clock, display } = fake("tty");
  const b = blob(1);
  display.blob(b, "downloading", { done: 0, total: b.size, attempt: 1 });
  clock.t = 1000;
  display.blob(b, "downloading", { done: MiB, total: b.size, attempt: 1 });
  assert.match(
    out.at(-1)!,
    /111111111111 downloading 1\.0 MiB \/ 4\.0 MiB {2}1\.0 MiB\/s {2}ETA 3s/,
  );
  clock.t = 1200;
  display.blob(b, "downloading", { done: 0, total: b.size, attempt: 2 });
  assert.doesNotMatch(out.at(-1)!, /\/s/, "no rate right after a retry");
});

Deno.test("progress: a terminal block is redrawn at most every 100 ms, and a message clears it first", () => {
  const { out, clock, display } = fake("tty");
  const b = blob(2);
  for (let i = 0; i <= 100; i++) {
    clock.t = i * 10;
    display.blob(b, "downloading", {
      done: i * 40000,
      total: b.size,
      attempt: 1,
    });
  }
  assert.ok(out.length <= 11 * 2, `${out.length} writes`);
  out.length = 0;
  display.message("oci: retrying");
  assert.match(
    out[0],
    /^\r\x1b\[2A\x1b\[J$/,
    "the block (blob and total) cleared",
  );
  assert.equal(out[1], "oci: retrying\n");
  assert.match(out[2], /^\x1b\[2K222222222222 downloading.*\n\x1b\[2Ktotal/);
  display.blob(b, "done", { done: b.size, total: b.size, attempt: 1 });
  display.done();
  assert.match(
    out.at(-1)!,
    /222222222222 done +4\.0 MiB \/ 4\.0 MiB\n\x1b\[2Ktotal +done +4\.0 MiB \/ 4\.0 MiB\n$/,
  );
});

Deno.test("progress: not a terminal, one line per finished blob of 1 MiB or more; quiet, none", () => {
  const { out, clock, display } = fake("plain");
  const big = blob(3);
  const small = blob(4, 1000);
  display.blob(small, "downloading", { done: 0, total: 1000, attempt: 1 });
  display.blob(small, "done", { done: 1000, total: 1000, attempt: 1 });
  display.blob(big, "downloading", { done: 0, total: big.size, attempt: 1 });
  clock.t = 500;
  display.message("oci: retrying");
  display.blob(big, "downloading", { done: 0, total: big.size, attempt: 2 });
  clock.t = 2500;
  display.blob(big, "downloading", {
    done: big.size,
    total: big.size,
    attempt: 2,
  });
  display.blob(big, "done", { done: big.size, total: big.size, attempt: 2 });
  display.blob(blob(5), "exists", {
    done: 4 * MiB,
    total: 4 * MiB,
    attempt: 1,
  });
  display.done();
  assert.deepEqual(out, [
    "oci: retrying\n",
    "333333333333 done 4.0 MiB in 2.5s (1.6 MiB/s)\n",
    "555555555555 exists 4.0 MiB\n",
  ]);
  const quiet = fake("quiet");
  quiet.display.blob(big, "done", {
    done: big.size,
    total: big.size,
    attempt: 1,
  });
  quiet.display.done();
  assert.deepEqual(quiet.out, []);
});
