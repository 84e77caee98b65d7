/** Listing what tests leave on disk. */

/** Every file under a directory (not the directories), as paths relative to it. */
export async function listFiles(
  root: string,
  relative = "",
): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(`${root}/${relative}`)) {
    const path = relative ? `${relative}/${entry.name}` : entry.name;
    if (entry.isDirectory) found.push(...await listFiles(root, path));
    else found.push(path);
  }
  return found;
}

/** {@linkcode listFiles}, or nothing when the directory does not exist (yet). */
export async function listFilesIfAny(root: string): Promise<string[]> {
  try {
    return await listFiles(root);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}
