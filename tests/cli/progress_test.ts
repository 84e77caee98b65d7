// The progress display's rendering, on an injected clock.
// deno-lint-ignore-file no-control-regex
import assert from "node:assert/strict";
import {
  createProgressDisplay,
  rateOf,
  renderPackLine,
} from "../../src/cli/progress.ts";

const MiB = 1024 * 1024;
const blob = (n: number, size = 4 * MiB) => ({
  mediaType: "application/octet-stream",
  digest: `sha256:${String(n).repeat(64)}`,
  size,
});

/** A display on a fake clock and a fake redraw timer, and what it wrote. */
function fake(mode: "tty" | "plain" | "quiet") {
  const out: string[] = [];
  const clock = { t: 0 };
  const timer = {
    tick: undefined as (() => void) | undefined,
    ms: 0,
    started: 0,
    stopped: 0,
  };
  const display = createProgressDisplay(
    mode,
    (s) => out.push(s),
    () => clock.t,
    (tick, ms) => {
      timer.tick = tick;
      timer.ms = ms;
      timer.started++;
      return () => {
        timer.tick = undefined;
        timer.stopped++;
      };
    },
  );
  return { out, clock, display, timer };
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

Deno.test("progress: a timer redraws a stalled transfer (rate and ETA change) at most 10 times a second, and stops at the end", () => {
  const { out, clock, display, timer } = fake("tty");
  const b = blob(6);
  assert.equal(timer.started, 0, "no timer before there is a block");
  display.blob(b, "downloading", { done: 0, total: b.size, attempt: 1 });
  clock.t = 1000;
  display.blob(b, "downloading", { done: 2 * MiB, total: b.size, attempt: 1 });
  assert.equal(timer.started, 1);
  assert.ok(timer.ms >= 100, `every ${timer.ms} ms`);
  assert.match(out.at(-1)!, /2\.0 MiB\/s {2}ETA 1s/);
  // Nothing moves for 2 s: only the timer draws, and the rate falls.
  clock.t = 3000;
  timer.tick!();
  assert.match(
    out.at(-1)!,
    /666666666666 downloading 2\.0 MiB \/ 4\.0 MiB {2}682\.7 KiB\/s {2}ETA 3s/,
  );
  const writes = out.length;
  clock.t = 3050;
  timer.tick!();
  assert.equal(out.length, writes, "not twice within 100 ms");
  display.blob(b, "done", { done: b.size, total: b.size, attempt: 1 });
  display.done();
  assert.equal(timer.stopped, 1);
  assert.equal(timer.tick, undefined);
  display.done();
  display.message("oci: after");
  assert.equal(
    out.at(-1),
    "oci: after\n",
    "no block drawn again after the end",
  );
  clock.t = 5000;
  const ended = out.length;
  display.blob(b, "downloading", { done: 0, total: b.size, attempt: 2 });
  display.pack({ files: 0, totalFiles: 1, bytes: 0, totalBytes: 1 });
  assert.equal(out.length, ended, "events after the end draw nothing");
  assert.equal(timer.started, 1);
});

Deno.test("progress: packing shows files and bytes read, then its line goes", () => {
  const { out, clock, display, timer } = fake("tty");
  const progress = (files: number, bytes: number) => ({
    files,
    totalFiles: 10,
    bytes,
    totalBytes: 4 * MiB,
  });
  display.pack(progress(0, 0));
  assert.equal(timer.started, 1);
  clock.t = 1000;
  display.pack(progress(3, MiB));
  assert.match(
    out.at(-1)!,
    /^\x1b\[2Klayer +packing +3\/10 files {2}1\.0 MiB \/ 4\.0 MiB {2}1\.0 MiB\/s {2}ETA 3s\n$/,
  );
  display.pack(undefined);
  display.message("Packed ./dir");
  assert.ok(!out.join("").split("Packed")[1].includes("packing"));
  display.done();
  assert.equal(timer.stopped, 1);
  assert.equal(
    renderPackLine(progress(10, 4 * MiB), []),
    "layer        packing     10/10 files  4.0 MiB / 4.0 MiB",
  );
});

Deno.test("progress: not a terminal, a blob that existed and is then extracted gets its line at done", () => {
  const { out, display } = fake("plain");
  const layer = blob(7);
  const whole = { done: layer.size, total: layer.size, attempt: 1 };
  display.blob(layer, "exists", whole);
  assert.deepEqual(out, [], "nothing at exists");
  display.blob(layer, "extracting", whole);
  assert.deepEqual(out, []);
  display.blob(layer, "done", whole);
  display.done();
  assert.deepEqual(out, ["777777777777 done 4.0 MiB (cached)\n"]);
});
