// Attacks of the issue "Safety" on this part of the stack (contract: tests/support/attacks.ts).
//
// Class 2: a hostile client holding a real token for repository `b` (from the served registry's
// own token endpoint) tries to get a blob that only repository `a` holds into `b` by a
// cross-repository mount, then to read it from `b`. Every attempt must be refused (a 202 upload
// session, or 401/403 with UNAUTHORIZED/DENIED) and the blob must stay unreadable from `b`.
import type { Attack } from "../support/attacks.ts";
import { serveRegistry } from "../../src/server/serve.ts";
import { digestOf } from "../../src/oci/digest.ts";

const USERS = { owner: "{PLAIN}owner-pw", mallory: "{PLAIN}mallory-pw" };

/** A token from the registry's token endpoint for one user and some scopes. */
async function tokenFor(
  url: string,
  user: keyof typeof USERS,
  scopes: string[],
  service = "oci-registry",
): Promise<string> {
  const query = new URLSearchParams({ service });
  for (const scope of scopes) query.append("scope", scope);
  const response = await fetch(`${url}/token?${query}`, {
    headers: {
      authorization: `Basic ${btoa(`${user}:${USERS[user].slice(7)}`)}`,
    },
  });
  if (response.status !== 200) {
    throw new Error(`the token endpoint answered ${response.status}`);
  }
  return (await response.json()).token;
}

/** Pushes `text` to `repository` as its owner; returns the blob's digest. */
async function ownerPushes(
  url: string,
  repository: string,
  text: string,
  service = "oci-registry",
): Promise<string> {
  const token = await tokenFor(url, "owner", [
    `repository:${repository}:pull,push`,
  ], service);
  const digest = digestOf(text);
  const response = await fetch(
    `${url}/v2/${repository}/blobs/uploads/?digest=${digest}`,
    {
      method: "POST",
      body: text,
      headers: { authorization: `Bearer ${token}` },
    },
  );
  await response.body?.cancel();
  if (response.status !== 201) {
    throw new Error(`setup: the owner's push answered ${response.status}`);
  }
  return digest;
}

/** Throws when the answer to a mount is neither an upload session nor an auth refusal. */
async function expectMountRefused(response: Response, what: string) {
  if (response.status === 202) {
    // An upload session: the client would have to send the bytes. Drop it.
    await response.body?.cancel();
    return;
  }
  const text = await response.text();
  if (
    (response.status === 401 || response.status === 403) &&
    /"(UNAUTHORIZED|DENIED)"/.test(text)
  ) {
    return;
  }
  throw new Error(`${what} was answered ${response.status}: ${text}`);
}

/** Throws when `repository` lets the token read the blob, by GET or HEAD. */
async function expectUnreadable(
  url: string,
  repository: string,
  digest: string,
  token: string,
) {
  for (const method of ["HEAD", "GET"]) {
    const response = await fetch(`${url}/v2/${repository}/blobs/${digest}`, {
      method,
      headers: { authorization: `Bearer ${token}` },
    });
    const body = method === "GET" ? await response.text() : "";
    if (response.status === 200 || response.status === 206) {
      throw new Error(
        `${method} /v2/${repository}/blobs/${digest} answered ${response.status} ${body}: the blob leaked into ${repository}`,
      );
    }
  }
}

/**
 * One mount attack: the owner pushes a secret to `source`; mallory, with a token for
 * `b:pull,push` only, POSTs `query` to b's uploads and then reads b.
 */
async function mountIntoB(
  source: string,
  query: (digest: string) => string,
): Promise<void> {
  await using registry = await serveRegistry({
    auth: { users: USERS, token: {} },
  });
  const digest = await ownerPushes(registry.url, source, `secret of ${source}`);
  const token = await tokenFor(registry.url, "mallory", [
    "repository:b:pull,push",
  ]);
  const path = `/v2/b/blobs/uploads/?${query(digest)}`;
  const response = await fetch(`${registry.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
  });
  await expectMountRefused(response, `POST ${path} with a token for b`);
  await expectUnreadable(registry.url, "b", digest, token);
}

/** The attacks this module contributes to tests/reliability/attacks_test.ts. */
export const attacks: Attack[] = [
  {
    class: 2,
    name:
      "token for b:pull,push mounts a blob from a (`?mount=D&from=a`) and reads it",
    attempt: () => mountIntoB("a", (digest) => `mount=${digest}&from=a`),
  },
  {
    class: 2,
    name: "mount with no `from` finds a's blob anywhere in the registry",
    attempt: () => mountIntoB("a", (digest) => `mount=${digest}`),
  },
  {
    class: 2,
    name: "mount with an empty `from=` searches every repository",
    attempt: () => mountIntoB("a", (digest) => `mount=${digest}&from=`),
  },
  {
    class: 2,
    name:
      "mount with an invalid `from` (`A`, upper case) searches every repository",
    attempt: () => mountIntoB("a", (digest) => `mount=${digest}&from=A`),
  },
  {
    class: 2,
    name:
      "mount with a double-encoded `from` (`team%252Fapp`) reaches team/app",
    attempt: () =>
      mountIntoB("team/app", (digest) => `mount=${digest}&from=team%252Fapp`),
  },
  {
    class: 2,
    name:
      "mount with `from=b/` (b plus a slash) is no name, so it searches everywhere",
    attempt: () => mountIntoB("a", (digest) => `mount=${digest}&from=b%2F`),
  },
  {
    class: 2,
    name: "mount's 201 vs 202 tells a b token whether a holds a digest",
    attempt: async () => {
      await using registry = await serveRegistry({
        auth: { users: USERS, token: {} },
      });
      const held = await ownerPushes(registry.url, "a", "a's private layer");
      const token = await tokenFor(registry.url, "mallory", [
        "repository:b:pull,push",
      ]);
      const answers: number[] = [];
      for (const digest of [held, digestOf("not in a")]) {
        const response = await fetch(
          `${registry.url}/v2/b/blobs/uploads/?mount=${digest}&from=a`,
          { method: "POST", headers: { authorization: `Bearer ${token}` } },
        );
        await response.body?.cancel();
        answers.push(response.status);
      }
      if (answers[0] !== answers[1]) {
        throw new Error(
          `mounts of a held and a missing digest were answered ${
            answers[0]
          } and ${answers[1]}: the answer reveals a's content`,
        );
      }
    },
  },
  {
    class: 2,
    name: "a token another registry's service issued (same secret) is accepted",
    attempt: async () => {
      // Two registries an operator configured with one signing secret but different services
      // (staging and production, say). Options built apart so that the original code, which
      // has no `service` option, still compiles.
      const staging = { secret: "shared-secret", service: "staging" };
      const production = { secret: "shared-secret", service: "production" };
      await using other = await serveRegistry({
        auth: { users: USERS, token: staging },
      });
      await using registry = await serveRegistry({
        auth: { users: USERS, token: production },
      });
      const digest = await ownerPushes(
        registry.url,
        "a",
        "production secret",
        "production",
      );
      // On staging, mallory may have every right; that must mean nothing on production.
      const token = await tokenFor(other.url, "mallory", [
        "repository:a:pull",
      ], "staging");
      const response = await fetch(`${registry.url}/v2/a/blobs/${digest}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const text = await response.text();
      if (response.status === 200) {
        throw new Error(
          `production served a/${digest} to a token staging issued: ${text}`,
        );
      }
    },
  },
];
