/**
 * `WWW-Authenticate` parsing (RFC 7235 §4.1): several challenges in one header, auth-params
 * whose values are tokens or quoted strings. The token68 form (`Negotiate abc==`) is refused
 * with a clear error, as no registry auth scheme uses it.
 *
 * @module
 */
import { redactSecrets } from "./errors.ts";

/** One authentication challenge: a scheme and its parameters. */
export interface Challenge {
  /** The scheme, lowercase: `bearer`, `basic`. */
  readonly scheme: string;
  /**
   * The auth-params: names lowercase, values as sent (quoted strings unescaped). When a name
   * repeats, the first value wins.
   */
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Thrown when a `WWW-Authenticate` header does not follow RFC 7235. The message quotes the
 * header and says what the parser expected and where.
 *
 * @example Catching a malformed header
 * ```ts
 * import assert from "node:assert/strict";
 * import { ChallengeSyntaxError, parseChallenges } from "./challenge.ts";
 * assert.throws(() => parseChallenges('Bearer realm="x'), (error: unknown) => {
 *   assert.ok(error instanceof ChallengeSyntaxError);
 *   assert.equal(error.position, 15);
 *   return true;
 * });
 * ```
 */
export class ChallengeSyntaxError extends SyntaxError {
  /** The header that failed to parse, with credentials redacted (see `redactSecrets`). */
  readonly input: string;
  /** Where the parser stopped in the header as received, counted from 0. */
  readonly position: number;

  /**
   * Creates the error.
   *
   * @param input The header.
   * @param position Where the parser stopped, counted from 0.
   * @param expected What the parser expected there, e.g. `a closing quote`.
   */
  constructor(input: string, position: number, expected: string) {
    // A registry may put back in the header what it was sent: nothing of it is kept.
    const shown = redactSecrets(input);
    // A huge header is quoted only in part: the message must stay readable.
    const quoted = shown.length > MAX_QUOTED_HEADER
      ? `"${shown.slice(0, MAX_QUOTED_HEADER)}…" (${input.length} characters)`
      : `"${shown}"`;
    super(
      `Cannot parse WWW-Authenticate header ${quoted}: expected ${expected} at position ${position}`,
    );
    this.name = "ChallengeSyntaxError";
    this.input = shown;
    this.position = position;
  }
}

/** Longest part of a header quoted in an error message. */
const MAX_QUOTED_HEADER = 256;

/** One or more tchar (RFC 7230 §3.2.6). */
const TOKEN_REGEXP = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
/** The start of an auth-param: a token, BWS and "=". */
const PARAM_START_REGEXP = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*=/y;
/** The start of a complete auth-param: name, "=" and the first character of a value. */
const PARAM_WITH_VALUE_REGEXP =
  /[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*=[ \t]*["!#$%&'*+\-.^_`|~0-9A-Za-z]/y;
/** A token68 (RFC 7235 §2.1) that makes up the rest of a list element. */
const TOKEN68_REGEXP = /[A-Za-z0-9\-._~+/]+=*[ \t]*(?:,|$)/y;

/** A position in the header being read. */
class HeaderCursor {
  readonly #input: string;
  #position = 0;

  constructor(input: string) {
    this.#input = input;
  }

  get done(): boolean {
    return this.#position >= this.#input.length;
  }

  peek(): string | undefined {
    return this.#input[this.#position];
  }

  fail(expected: string): never {
    throw new ChallengeSyntaxError(this.#input, this.#position, expected);
  }

  /** Whether `regexp` (sticky) matches here, without moving. */
  looksAt(regexp: RegExp): boolean {
    regexp.lastIndex = this.#position;
    return regexp.test(this.#input);
  }

  skip(char: string): void {
    if (this.peek() !== char) this.fail(`"${char}"`);
    this.#position++;
  }

  /** Skips optional whitespace (OWS/BWS: spaces and tabs); answers whether there was any. */
  skipWhitespace(): boolean {
    const start = this.#position;
    while (this.peek() === " " || this.peek() === "\t") this.#position++;
    return this.#position > start;
  }

  /** Skips `OWS "," OWS`, and any empty list elements after it. */
  skipListSeparator(): void {
    this.skipWhitespace();
    this.skip(",");
    this.skipWhitespace();
    while (this.peek() === ",") {
      this.#position++;
      this.skipWhitespace();
    }
  }

  token(): string | undefined {
    TOKEN_REGEXP.lastIndex = this.#position;
    const match = TOKEN_REGEXP.exec(this.#input);
    if (match === null) return undefined;
    this.#position += match[0].length;
    return match[0];
  }

  /** Reads a quoted-string, the cursor being on its opening quote; returns it unescaped. */
  quotedString(): string {
    this.skip('"');
    let value = "";
    for (;;) {
      if (this.done) this.fail("a closing quote");
      const char = this.peek()!;
      if (char === '"') {
        this.#position++;
        return value;
      }
      if (char === "\\") {
        this.#position++;
        if (this.done) this.fail("a character after the backslash");
        if (!isQuotable(this.peek()!)) {
          this.fail("a visible character after the backslash");
        }
      } else if (!isQuotable(char)) {
        this.fail("a visible character or a closing quote");
      }
      value += this.peek();
      this.#position++;
    }
  }
}

/** HTAB, SP, VCHAR or obs-text: what a quoted-string may hold. */
function isQuotable(char: string): boolean {
  const code = char.charCodeAt(0);
  return code === 0x09 || (code >= 0x20 && code !== 0x7f);
}

/**
 * Parses a `WWW-Authenticate` header into its challenges. Schemes and parameter names are
 * lowercased; quoted values are unescaped, so commas and escaped quotes inside them survive.
 * Whitespace around `=` and `,` and empty list elements between challenges are accepted; a
 * header that ends in a comma is not.
 *
 * @param header The header value.
 * @returns The challenges, in the order sent.
 * @throws {ChallengeSyntaxError} When the header is malformed or uses token68; the message
 * says what was expected and where.
 *
 * @example Two challenges in one header
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseChallenges } from "./challenge.ts";
 * assert.deepEqual(
 *   parseChallenges('Bearer realm="https://auth.io/token",scope="repository:a:pull,push", Basic realm="r"'),
 *   [
 *     { scheme: "bearer", params: { realm: "https://auth.io/token", scope: "repository:a:pull,push" } },
 *     { scheme: "basic", params: { realm: "r" } },
 *   ],
 * );
 * ```
 *
 * @example A malformed header
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseChallenges } from "./challenge.ts";
 * assert.throws(
 *   () => parseChallenges("Bearer realm=https://auth.io/token"),
 *   /expected a comma between auth-params at position 18/,
 * );
 * ```
 */
export function parseChallenges(header: string): Challenge[] {
  const cursor = new HeaderCursor(header);
  const challenges: Challenge[] = [];
  cursor.skipWhitespace();
  do challenges.push(readChallenge(cursor)); while (!cursor.done);
  return challenges;
}

/** Reads one challenge and the list separator after it, if any. */
function readChallenge(cursor: HeaderCursor): Challenge {
  const scheme = cursor.token() ?? cursor.fail("an authentication scheme");
  const params = new Map<string, string>();
  if (cursor.done) return toChallenge(scheme, params);
  const spaced = cursor.skipWhitespace();
  if (cursor.done) cursor.fail("auth-params after the scheme");
  if (cursor.peek() === ",") {
    cursor.skipListSeparator();
    if (cursor.done) cursor.fail("another challenge after the comma");
    return toChallenge(scheme, params);
  }
  if (!spaced) cursor.fail("a space or a comma after the scheme");
  if (
    !cursor.looksAt(PARAM_WITH_VALUE_REGEXP) && cursor.looksAt(TOKEN68_REGEXP)
  ) {
    cursor.fail("auth-params (token68 is not supported)");
  }
  for (;;) {
    const name = cursor.token() ?? cursor.fail("an auth-param name");
    cursor.skipWhitespace();
    if (cursor.peek() !== "=") cursor.fail(`"=" after "${name}"`);
    cursor.skip("=");
    cursor.skipWhitespace();
    const value = cursor.peek() === '"'
      ? cursor.quotedString()
      : cursor.token() ??
        cursor.fail(`a token or a quoted string as the value of "${name}"`);
    const key = name.toLowerCase();
    if (!params.has(key)) params.set(key, value);
    cursor.skipWhitespace();
    if (cursor.done) return toChallenge(scheme, params);
    if (cursor.peek() !== ",") cursor.fail("a comma between auth-params");
    cursor.skipListSeparator();
    if (cursor.done) {
      cursor.fail("an auth-param or a challenge after the comma");
    }
    if (!cursor.looksAt(PARAM_START_REGEXP)) return toChallenge(scheme, params);
  }
}

/** A frozen challenge; `fromEntries` keeps names like `__proto__` as plain own properties. */
function toChallenge(scheme: string, params: Map<string, string>): Challenge {
  return Object.freeze({
    scheme: scheme.toLowerCase(),
    params: Object.freeze(Object.fromEntries(params)),
  });
}

/**
 * Finds the first challenge of a scheme, compared without regard to case.
 *
 * @param challenges Challenges from {@linkcode parseChallenges}.
 * @param scheme The scheme, e.g. `Bearer`.
 * @returns The first challenge of that scheme, or `undefined`.
 *
 * @example Picking the Bearer challenge
 * ```ts
 * import assert from "node:assert/strict";
 * import { findChallenge, parseChallenges } from "./challenge.ts";
 * const challenges = parseChallenges('Basic realm="r", Bearer realm="https://auth.io/token"');
 * assert.equal(findChallenge(challenges, "Bearer")?.params.realm, "https://auth.io/token");
 * assert.equal(findChallenge(challenges, "digest"), undefined);
 * ```
 */
export function findChallenge(
  challenges: readonly Challenge[],
  scheme: string,
): Challenge | undefined {
  const wanted = scheme.toLowerCase();
  return challenges.find((challenge) => challenge.scheme === wanted);
}
