/**
 * Deletes and handovers in the names bucket that never land on another
 * instance's entry. A request can be held up on a stalled link (its socket
 * open, nothing passing) and reach NATS only after the heal, when the name
 * may be someone else's: so these go only over a revision just read and
 * found to be the right owner's. (Renewals write over their own last
 * revision, see `names.ts`; the look-alike guards' renewals are still plain
 * puts, which the holder's next heartbeat puts right.)
 *
 * @module
 */

import type { KV } from "@nats-io/kv";

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
 * written; rejects when the entry is someone else's now.
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
    if (!theirs(current.string())) throw new Error("the entry is someone else's now");
    return await bucket.update(key, data, current.revision);
  }
}
