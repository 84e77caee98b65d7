/**
 * The attack suite's contract: each module in `tests/attacks/` exports a list of attacks, each
 * one a hostile registry, client or crafted layer trying one thing the issue "Safety" named.
 * `tests/reliability/attacks_test.ts` runs them all (one test per class, one step per attack) and
 * prints `reliability attacks: … attacks=N refused=N`.
 */

/** The classes of the issue "Safety", by number. */
export const ATTACK_CLASSES = {
  1: "whiteouts and entry names escape the target",
  2: "mounts bypass token scopes",
  3: "redirects, realms and Location headers to other schemes",
  4: "upload sessions exhaust file descriptors",
  5: "repository names collide with the --root layout",
  6: "decompression is not back-pressured",
  7: "stalled registries keep a client waiting",
  8: "credentials echoed by a registry",
} as const;

/** One attack: `attempt` resolves when we refused it (nothing lost, nothing leaked, a typed error
 * where one is due) and throws, with what got through, when the attack worked. */
export interface Attack {
  /** The class of the issue it belongs to. */
  readonly class: keyof typeof ATTACK_CLASSES;
  /** What the attacker does, in a few words ("whiteout `.wh..` removes the target's parent"). */
  readonly name: string;
  /** Runs the attack against the current code. */
  readonly attempt: () => Promise<void>;
}
