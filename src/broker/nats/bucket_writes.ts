/**
 * Writes to the names bucket that never land on another instance's entry.
 * A request can be held up on a stalled link (its socket open, nothing
 * passing) and reach NATS only after the heal, when the name may be someone
 * else's: so deletes, handovers and the guards' renewals go only over a
 * revision written by, or just read and found to be, the right owner's.
 * (Names' renewals write over their own last revision, see `names.ts`.)
 *
 * @module
 */

import type { KV } from "@nats-io/kv";

/** An entry written over is someone else's now. */
export class TakenElsewhere extends Error {
  override readonly name = "TakenElsewhere";

  constructor(key: string) {
    super(`the entry ${key} is someone else's now`);
  }
}

/**
 * Deletes `key` when its entry is `ours`, over that revision only. Resolves
 * `true` when nothing of ours is left there (gone, or another's), `false`
 * after sending the delete: a write of ours still in flight could create the
 * entry anew, so it is worth looking again.
 */
export async function deleteIfOurs(
  bucket: KV,
  key: string,
  ours: (data: string) => boolean,
): Promise<boolean> {
  const current = await bucket.get(key);
  if (current === null || current.operation !== "PUT" || !ours(current.string())) return true;
  await bucket.delete(key, { previousSeq: current.revision });
  return false;
}

/**
 * Writes `data` under `key` over the entry at `revision`; when it was
 * written again since, over that later one, if it is still `theirs` (the
 * same owner's); when it is gone, creates it. Resolves with the revision
 * written; rejects with {@linkcode TakenElsewhere} when the entry is
 * someone else's now.
 */
export async function writeOver(
  bucket: KV,
  key: string,
  data: string,
  revision: number,
  theirs: (data: string) => boolean,
): Promise<number> {
  try {
    return await bucket.update(key, data, revision);
  } catch {
    const current = await bucket.get(key);
    if (current === null || current.operation !== "PUT") return await bucket.create(key, data);
    if (!theirs(current.string())) throw new TakenElsewhere(key);
    return await bucket.update(key, data, current.revision);
  }
}
