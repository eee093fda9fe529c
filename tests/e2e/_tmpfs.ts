/** A full disk on demand: a small tmpfs (root only) and a file that fills it. */

/**
 * Whether a test may mount a tmpfs: only root may; in CI (root) it must, so
 * a missing mount never passes for a skip there.
 */
export function canMountTmpfs(what: string): boolean {
  if (Deno.uid() === 0) return true;
  if (Deno.env.get("CI") === "true") throw new Error(`${what} needs root to mount a tmpfs`);
  console.warn(`Skipping ${what}: mounting a tmpfs needs root`);
  return false;
}

/** Mounts a tmpfs of `size` (such as `1m`) on `dir`; `umount` it when done. */
export async function mountTmpfs(dir: string, size: string): Promise<void> {
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
  }).output();
  if (mount.code !== 0) {
    throw new Error(`Cannot mount a tmpfs on ${dir}: ${new TextDecoder().decode(mount.stderr)}`);
  }
}

/** Unmounts what {@linkcode mountTmpfs} mounted. */
export async function unmount(dir: string): Promise<void> {
  await new Deno.Command("umount", { args: [dir] }).output();
}

/** Fills the file system holding `path` to the last byte: big writes first, then small ones. */
export async function fill(path: string): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true });
  try {
    for (const size of [1 << 20, 4096]) {
      const chunk = new Uint8Array(size);
      try {
        while (true) await file.write(chunk);
      } catch (error) {
        if (!(error instanceof Error) || !/space/i.test(error.message)) throw error;
      }
    }
  } finally {
    file.close();
  }
}
