// Attacks of the issue "Safety" on this part of the stack (contract: tests/support/attacks.ts).
import type { Attack } from "../support/attacks.ts";

/** The attacks this module contributes to tests/reliability/attacks_test.ts. */
export const attacks: Attack[] = [];
