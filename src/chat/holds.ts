/**
 * The bans and mutes in force, indexed: held names by every comparison key
 * (so a ban of `Mallory` holds `MaIlory`), so that a name costs a few lookups;
 * held networks in a list an address is checked against (few are held, and
 * only when some are is a connection or a message checked at all). The index
 * follows the records the broker keeps; it never decides anything itself.
 *
 * @module
 */

import type { HoldRecord, ModerationRecord } from "../broker/types.ts";
import { type Network, networkContains, parseAddress, parseNetwork } from "../net/ip.ts";
import { comparisonKeys, MAX_NAME_UNITS } from "../text/names.ts";

type Kind = "ban" | "mute";

/** One kind of hold (bans, or mutes), by name keys and by network. */
class HoldsOfKind {
  /**
   * Record keys of held names, by each comparison key (see `comparisonKeys`):
   * several records may share one (a ban of `Mallory` and of `MaIlory`).
   */
  readonly byName = new Map<string, Set<string>>();
  /** Held networks, with their record keys. */
  readonly networks = new Map<string, Network>();

  add(key: string, record: HoldRecord<Kind>): void {
    if (record.name !== undefined) {
      for (const index of comparisonKeys(record.name)) {
        let keys = this.byName.get(index);
        if (keys === undefined) this.byName.set(index, keys = new Set());
        keys.add(key);
      }
    } else if (record.address !== undefined) {
      const network = readNetwork(record.address);
      if (network !== undefined) this.networks.set(key, network);
    }
  }

  remove(key: string, record: HoldRecord<Kind>): void {
    if (record.name !== undefined) {
      for (const index of comparisonKeys(record.name)) {
        const keys = this.byName.get(index);
        keys?.delete(key);
        if (keys?.size === 0) this.byName.delete(index);
      }
    }
    this.networks.delete(key);
  }

  /** Keys of the records holding `name` or `address`. */
  *keysFor(name: string | undefined, address: string | undefined): Generator<string> {
    if (name !== undefined && name.length <= MAX_NAME_UNITS) {
      const seen = new Set<string>();
      for (const index of comparisonKeys(name)) {
        for (const key of this.byName.get(index) ?? []) {
          if (!seen.has(key)) yield key;
          seen.add(key);
        }
      }
    }
    if (address !== undefined && this.networks.size > 0) {
      const bytes = readAddress(address);
      if (bytes === undefined) return;
      for (const [key, network] of this.networks) {
        if (networkContains(network, bytes)) yield key;
      }
    }
  }
}

function readNetwork(text: string): Network | undefined {
  try {
    return parseNetwork(text);
  } catch {
    return undefined;
  }
}

function readAddress(text: string): Uint8Array | undefined {
  try {
    return parseAddress(text);
  } catch {
    return undefined;
  }
}

/** Whether the network written `network` holds the client address `address`. */
export function networkHolds(network: string, address: string): boolean {
  const held = readNetwork(network);
  const bytes = readAddress(address);
  return held !== undefined && bytes !== undefined && networkContains(held, bytes);
}

/** Every ban and mute known here, indexed. */
export class Holds {
  readonly #kinds: Record<Kind, HoldsOfKind> = { ban: new HoldsOfKind(), mute: new HoldsOfKind() };
  /** The holds indexed, by record key. */
  readonly #records = new Map<string, HoldRecord<Kind>>();

  /**
   * Follows a record change (a room's settings are not holds and pass by);
   * returns the hold the key held before, if any.
   */
  changed(key: string, record: ModerationRecord | undefined): HoldRecord<Kind> | undefined {
    const previous = this.#records.get(key);
    this.#records.delete(key);
    if (previous !== undefined) this.#kinds[previous.kind].remove(key, previous);
    if (record !== undefined && record.kind !== "room") {
      this.#records.set(key, record);
      this.#kinds[record.kind].add(key, record);
    }
    return previous;
  }

  /** Whether any mute is in force, so that a message costs nothing more when none is. */
  get anyMutes(): boolean {
    const mutes = this.#kinds.mute;
    return mutes.byName.size > 0 || mutes.networks.size > 0;
  }

  /** The keys of the records of `kind` that hold `name` or `address`. */
  keysFor(kind: Kind, name: string | undefined, address: string | undefined): Generator<string> {
    return this.#kinds[kind].keysFor(name, address);
  }
}
