/**
 * `WWW-Authenticate` parsing (RFC 7235 §4.1): several challenges in one header, auth-params
 * with tokens or quoted strings.
 *
 * @module
 */

/** One authentication challenge: a scheme and its parameters. */
export interface Challenge {
  /** The scheme, lowercase: `bearer`, `basic`. */
  readonly scheme: string;
  /** The parameters, keys lowercase, values as sent (quoted strings unescaped); first wins. */
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Thrown when a `WWW-Authenticate` header does not follow RFC 7235.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ChallengeSyntaxError, parseChallenges } from "./challenge.ts";
 * assert.throws(() => parseChallenges("Bearer realm="), ChallengeSyntaxError);
 * ```
 */
export class ChallengeSyntaxError extends SyntaxError {
  /** The header that failed to parse. */
  readonly input: string;
  /** Where the parser stopped, from 0. */
  readonly position: number;

  /**
   * Creates the error.
   *
   * @param input The header.
   * @param position Where the parser stopped.
   * @param expected What it expected there.
   */
  constructor(input: string, position: number, expected: string) {
    super(
      `Cannot parse WWW-Authenticate header "${input}": expected ${expected} at position ${position}`,
    );
    this.name = "ChallengeSyntaxError";
    this.input = input;
    this.position = position;
  }
}

/** tchar of RFC 7230. */
const TOKEN_REGEXP = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;

/**
 * Parses a `WWW-Authenticate` header into its challenges. Schemes and parameter names are
 * lowercased; quoted values are unescaped, so commas and escaped quotes inside them survive.
 *
 * @param header The header value.
 * @returns The challenges, in order.
 * @throws {ChallengeSyntaxError} When the header is malformed; the message says where.
 *
 * @example Two challenges in one header
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseChallenges } from "./challenge.ts";
 * assert.deepEqual(parseChallenges('Bearer realm="https://auth/token",scope="repository:a:pull,push", Basic realm="r"'), [
 *   { scheme: "bearer", params: { realm: "https://auth/token", scope: "repository:a:pull,push" } },
 *   { scheme: "basic", params: { realm: "r" } },
 * ]);
 * ```
 */
export function parseChallenges(header: string): Challenge[] {
  let pos = 0;
  const fail = (expected: string): never => {
    throw new ChallengeSyntaxError(header, pos, expected);
  };
  const skipSpaces = () => {
    while (header[pos] === " " || header[pos] === "\t") pos++;
  };
  const token = (): string | undefined => {
    const match = TOKEN_REGEXP.exec(header.slice(pos));
    if (!match) return undefined;
    pos += match[0].length;
    return match[0];
  };
  const quoted = (): string => {
    pos++; // opening quote
    let value = "";
    while (pos < header.length) {
      const char = header[pos];
      if (char === '"') {
        pos++;
        return value;
      }
      if (char === "\\") {
        if (pos + 1 >= header.length) break;
        value += header[pos + 1];
        pos += 2;
        continue;
      }
      value += char;
      pos++;
    }
    return fail("a closing quote");
  };
  /** After a comma: is what follows `key =` (a parameter) rather than a new scheme? */
  const paramAhead = (): boolean =>
    /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*=/.test(header.slice(pos));

  const challenges: Challenge[] = [];
  skipSpaces();
  if (pos >= header.length) fail("an authentication scheme");
  while (pos < header.length) {
    const scheme = token();
    if (scheme === undefined) fail("an authentication scheme");
    const params: Record<string, string> = {};
    challenges.push({ scheme: scheme!.toLowerCase(), params });
    if (pos >= header.length) break;
    if (header[pos] === ",") {
      // A challenge without parameters, then the next one.
      pos++;
      skipSpaces();
      if (pos >= header.length) fail("another challenge after the comma");
      continue;
    }
    if (header[pos] !== " " && header[pos] !== "\t") fail("a space or a comma");
    skipSpaces();
    if (pos >= header.length) fail("parameters after the scheme");
    // auth-param *( OWS "," OWS auth-param ), until a new scheme starts.
    for (;;) {
      const key = token();
      if (key === undefined) fail("a parameter name");
      skipSpaces();
      if (header[pos] !== "=") fail('"=" after the parameter name');
      pos++;
      skipSpaces();
      let value: string | undefined;
      if (header[pos] === '"') value = quoted();
      else value = token();
      if (value === undefined) fail("a token or a quoted string");
      const name = key!.toLowerCase();
      if (!(name in params)) params[name] = value!;
      skipSpaces();
      if (pos >= header.length) break;
      if (header[pos] !== ",") fail("a comma between parameters");
      while (
        header[pos] === "," || header[pos] === " " || header[pos] === "\t"
      ) {
        if (header[pos] === ",") {
          pos++;
          skipSpaces();
          if (pos >= header.length) {
            fail("a parameter or a challenge after the comma");
          }
        } else pos++;
      }
      if (!paramAhead()) break;
    }
  }
  return challenges;
}
