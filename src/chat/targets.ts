/**
 * Who a ban or a mute holds, typed: `name:<name>` holds a name (whoever has
 * it, now or later), `addr:<address or network>` an address (an IPv6 one by
 * its /64), and a plain word the user of that name, when one is here or on
 * another instance. A plain word that is nobody is refused as ambiguous
 * rather than guessed, so `!ban 10.9.8.7` never bans an address when a user
 * of that name was meant, nor the other way round.
 *
 * @module
 */

import type { RemoteUser } from "../broker/types.ts";
import { AddressError, formatNetwork, parseNetwork } from "../net/ip.ts";
import type { User } from "./user.ts";

/** What a moderation acts on. */
export type Target =
  /** A user here (`local`) or on another instance (`remote`). */
  | {
    readonly kind: "user";
    readonly name: string;
    readonly local?: User;
    readonly remote?: RemoteUser;
  }
  /** A name nobody holds now. */
  | { readonly kind: "name"; readonly name: string }
  /** An address or network, in its one spelling. */
  | { readonly kind: "address"; readonly network: string };

/** Why a target was refused: nobody of that name, or not a name or address at all. */
export type TargetRefusal =
  | { readonly problem: "unknown"; readonly target: string }
  | { readonly problem: "invalid"; readonly target: string; readonly reason: string };

/** How targets are looked up. */
export interface TargetLookup {
  /** The user holding `name` (or a look-alike), here or elsewhere. */
  readonly find: (name: string) => { local?: User; remote?: RemoteUser } | undefined;
  /** Why `name` can be nobody's name (invalid, reserved), or `undefined`. */
  readonly problemOf: (name: string) => string | undefined;
}

export const NAME_PREFIX = "name:";
export const ADDRESS_PREFIX = "addr:";

/** The network `text` names, in its one spelling, or why it names none. */
export function readNetwork(text: string): string | { reason: string } {
  try {
    return formatNetwork(parseNetwork(text));
  } catch (error) {
    if (error instanceof AddressError) return { reason: error.message };
    throw error;
  }
}

/** Reads a moderation target; see the module's description. */
export function readTarget(text: string, lookup: TargetLookup): Target | TargetRefusal {
  if (text.startsWith(ADDRESS_PREFIX)) {
    const network = readNetwork(text.slice(ADDRESS_PREFIX.length));
    if (typeof network !== "string") return { problem: "invalid", target: text, ...network };
    return { kind: "address", network };
  }
  const named = text.startsWith(NAME_PREFIX);
  const name = named ? text.slice(NAME_PREFIX.length) : text;
  const holder = lookup.find(name);
  if (holder !== undefined) {
    const held = holder.local?.name ?? holder.remote?.name ?? name;
    return { kind: "user", name: held, ...holder };
  }
  if (!named) return { problem: "unknown", target: text };
  const problem = lookup.problemOf(name);
  if (problem !== undefined) return { problem: "invalid", target: text, reason: problem };
  return { kind: "name", name };
}

/**
 * What a lift (`!unban`, `!unmute`) names: with a prefix, that name or
 * network; plain, a held name when one matches (`held`), else a network.
 */
export function readLiftTarget(
  text: string,
  held: (name: string) => boolean,
): { readonly name: string } | { readonly network: string } | TargetRefusal {
  if (text.startsWith(ADDRESS_PREFIX)) {
    const network = readNetwork(text.slice(ADDRESS_PREFIX.length));
    if (typeof network !== "string") return { problem: "invalid", target: text, ...network };
    return { network };
  }
  if (text.startsWith(NAME_PREFIX)) return { name: text.slice(NAME_PREFIX.length) };
  if (held(text)) return { name: text };
  const network = readNetwork(text);
  return typeof network === "string" ? { network } : { name: text };
}
