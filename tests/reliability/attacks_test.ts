// The attack suite: every attack of tests/attacks/ (hostile registries and clients, crafted
// layers), one test per class of the issue "Safety", one step per attack. Every attack must be
// refused; the summary line counts them: `reliability attacks: … attacks=N refused=N`.
import assert from "node:assert/strict";
import { type Attack, ATTACK_CLASSES } from "../support/attacks.ts";
import { reportSummary } from "./summary.ts";
import { attacks as extraction } from "../attacks/extraction.ts";
import { attacks as serverScopes } from "../attacks/server_scopes.ts";
import { attacks as serverStorage } from "../attacks/server_storage.ts";
import { attacks as transport } from "../attacks/transport.ts";
import { attacks as timeouts } from "../attacks/timeouts.ts";

const all: Attack[] = [
  ...extraction,
  ...serverScopes,
  ...serverStorage,
  ...transport,
  ...timeouts,
];
const outcomes: { attack: Attack; refused: boolean; error?: unknown }[] = [];

for (const [number, title] of Object.entries(ATTACK_CLASSES)) {
  const ofClass = all.filter((attack) => attack.class === Number(number));
  Deno.test(`attack class ${number}: ${title}`, async (t) => {
    assert.ok(
      ofClass.length >= 4,
      `class ${number} needs the issue's attack and at least three variants, has ${ofClass.length}`,
    );
    for (const attack of ofClass) {
      await t.step(attack.name, async () => {
        try {
          await attack.attempt();
          outcomes.push({ attack, refused: true });
        } catch (error) {
          outcomes.push({ attack, refused: false, error });
          throw error;
        }
      });
    }
  });
}

Deno.test("attack summary", async () => {
  const refused = outcomes.filter((o) => o.refused).length;
  await reportSummary("attacks", {
    operations: outcomes.length,
    faults: 0,
    retries: 0,
    failures: outcomes.length - refused,
    corrupt: 0,
    leaked: 0,
    extra: { attacks: outcomes.length, refused },
  });
  assert.equal(refused, all.length);
});
