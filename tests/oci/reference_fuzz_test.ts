// 10,000 generated reference strings (random and mutated valid ones): each parses, or fails with a
// ReferenceSyntaxError that quotes the input; nothing else is ever thrown.
import assert from "node:assert/strict";
import {
  formatReference,
  parseReference,
  ReferenceSyntaxError,
} from "../../src/oci/reference.ts";
import { assertTyped } from "../support/bad_input.ts";

const VALID = [
  "ubuntu",
  "ubuntu:22.04",
  "ghcr.io/spack/ubuntu-jammy:latest",
  "127.0.0.1:5000/cache/app:v1",
  "[::1]:5000/a/b@sha256:" + "a".repeat(64),
  "example.com:1234/a/b/c:tag@sha256:" + "b".repeat(64),
  "registry-1.docker.io/library/alpine",
];
const ALPHABET = "abcAZ09:/@._-[]%#? \t\n\u00e9\u0000";

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

Deno.test("parseReference() parses or refuses 10,000 generated strings, never crashing", () => {
  const next = random(2026);
  let parsed = 0;
  let refused = 0;
  for (let i = 0; i < 10_000; i++) {
    let text: string;
    if (i % 2 === 0) {
      const base = VALID[Math.floor(next() * VALID.length)].split("");
      const edits = 1 + Math.floor(next() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(next() * (base.length + 1));
        const char = ALPHABET[Math.floor(next() * ALPHABET.length)];
        const kind = next();
        if (kind < 0.33) base.splice(at, 0, char);
        else if (kind < 0.66) base.splice(at, 1);
        else base[at] = char;
      }
      text = base.join("");
    } else {
      const length = Math.floor(next() * 80);
      text = Array.from(
        { length },
        () => ALPHABET[Math.floor(next() * ALPHABET.length)],
      ).join("");
    }
    try {
      const ref = parseReference(text);
      // What parses prints back to something that parses to the same reference.
      assert.deepEqual(parseReference(formatReference(ref)), ref, text);
      parsed++;
    } catch (error) {
      assert.ok(
        error instanceof ReferenceSyntaxError,
        `${JSON.stringify(text)} threw ${error}`,
      );
      assert.ok(
        error.message.startsWith(`Cannot parse image reference "${text}"`),
        error.message,
      );
      refused++;
    }
  }
  assert.ok(
    parsed > 500 && refused > 500,
    `parsed ${parsed}, refused ${refused}`,
  );
});

// Bad input from the outside world (issue 7, item 3): mutated references.

const REFERENCE_SEEDS = [
  "ubuntu",
  "ubuntu:22.04",
  "library/ubuntu@sha256:" + "c".repeat(64),
  "ghcr.io/spack/ubuntu-jammy:latest",
  "localhost/a__b/c--d.e:T_1.x-y",
  "localhost:5000/a/b/c/d/e/f",
  "127.0.0.1:5000/cache/app:v1",
  "[::1]:5000/a/b@sha256:" + "a".repeat(64),
  "[fe80::1%25eth0]:443/x",
  "example.com:1234/a/b/c:tag@sha256:" + "b".repeat(64),
  "example.com/a@sha512:" + "d".repeat(128),
  "registry-1.docker.io/library/alpine",
  "x/y:" + "t".repeat(128),
];
const MUTATIONS = "aZ09:/@._-[]%#?+= \t\n\r\u00e9\u0000\u{1F600}\uD800";

Deno.test("bad input: 3,000 mutated references parse or give a ReferenceSyntaxError quoting them", () => {
  const next = random(7);
  const pick = <T>(items: ArrayLike<T>): T =>
    items[Math.floor(next() * items.length)];
  let refused = 0;
  for (let i = 0; i < 3_000; i++) {
    const text = [...pick(REFERENCE_SEEDS)];
    for (let e = 1 + Math.floor(next() * 3); e > 0; e--) {
      const at = Math.floor(next() * (text.length + 1));
      const kind = next();
      if (kind < 0.3) text.splice(at, 0, pick(MUTATIONS));
      else if (kind < 0.6) text.splice(at, 1);
      else if (kind < 0.8) text[at] = pick(MUTATIONS);
      else text.splice(at, 0, ...text.slice(at, at + 8)); // duplicate a slice
    }
    const input = text.join("");
    try {
      const ref = parseReference(input);
      assert.deepEqual(parseReference(formatReference(ref)), ref, input);
    } catch (error) {
      assertTyped(error, ReferenceSyntaxError);
      assert.equal((error as ReferenceSyntaxError).input, input);
      const quoted = input.length > 512 ? `${input.slice(0, 512)}…` : input;
      assert.ok(
        (error as Error).message.startsWith(
          `Cannot parse image reference "${quoted}"`,
        ),
        (error as Error).message,
      );
      refused++;
    }
  }
  assert.ok(refused > 1000, `refused only ${refused}`);
});
