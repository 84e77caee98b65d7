/**
 * Repository names the embedded registry takes: the distribution spec's grammar, and no
 * component that an OCI image layout uses for itself, so that names map to paths under
 * `--root` without collisions.
 *
 * @module
 */
import { PATH_COMPONENT_REGEXP } from "../oci/reference.ts";

/**
 * The names an OCI image layout gives its own entries. A repository is stored as a layout in
 * the directory its name spells (`ROOT/team/app/`), so no component of a name may be one of
 * these: `team/app/blobs` would be a directory inside `team/app`'s blob store, and
 * `team/index.json` would replace `team`'s index with a directory.
 */
export const RESERVED_NAME_COMPONENTS: readonly string[] = [
  "blobs",
  "index.json",
  "oci-layout",
];

/** Longest repository name, in characters (as distribution). */
const MAX_NAME_LENGTH = 255;

/**
 * A repository name the registry refuses, with the component at fault.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkRepositoryName, RepositoryNameError } from "./repository_name.ts";
 * assert.throws(() => checkRepositoryName("team/app/blobs"), RepositoryNameError);
 * ```
 */
export class RepositoryNameError extends Error {
  /** The whole name. */
  readonly repository: string;
  /** The component at fault (the whole name when its length is). */
  readonly component: string;
  /**
   * Makes the error; its message names the repository and the reason.
   *
   * @param repository The name.
   * @param component The component at fault.
   * @param reason Why it is refused.
   */
  constructor(repository: string, component: string, reason: string) {
    super(`invalid repository name "${repository}": ${reason}`);
    this.name = "RepositoryNameError";
    this.repository = repository;
    this.component = component;
  }
}

/**
 * Checks a repository name: 1 to 255 characters, `/`-separated components of lowercase
 * letters and digits joined by `.`, `_`, `__` or dashes (the distribution spec's grammar), and
 * no component that an OCI image layout uses for itself ({@linkcode RESERVED_NAME_COMPONENTS}).
 * Components cannot start with `.`, so `.blobs`, `..` and the like are refused too.
 *
 * @param repository The name.
 * @throws {RepositoryNameError} Naming the component at fault.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkRepositoryName } from "./repository_name.ts";
 * checkRepositoryName("team/app");
 * assert.throws(() => checkRepositoryName("victim/index.json/x"), /"index\.json" is reserved/);
 * assert.throws(() => checkRepositoryName("team/.blobs"), /"\.blobs" is not/);
 * ```
 */
export function checkRepositoryName(repository: string): void {
  if (repository.length === 0 || repository.length > MAX_NAME_LENGTH) {
    throw new RepositoryNameError(
      repository,
      repository,
      `a name has 1 to ${MAX_NAME_LENGTH} characters, this one ${repository.length}`,
    );
  }
  for (const component of repository.split("/")) {
    if (!PATH_COMPONENT_REGEXP.test(component)) {
      throw new RepositoryNameError(
        repository,
        component,
        `the component "${component}" is not lowercase letters and digits joined by ".", "_", "__" or "-"`,
      );
    }
    if (RESERVED_NAME_COMPONENTS.includes(component)) {
      throw new RepositoryNameError(
        repository,
        component,
        `the component "${component}" is reserved: OCI image layouts use it (reserved: ${
          RESERVED_NAME_COMPONENTS.join(", ")
        })`,
      );
    }
  }
}
