/**
 * The one admission of names and identities. Every way in to a name (open
 * mode's `?name=` and `hello`, `!setname`, a signed token, a generated name,
 * a bot of the server API) asks here, and gets the same answer: the name's
 * size is bounded first, then it must be valid, not reserved (look-alikes
 * included), not held or being claimed by anyone else here or on another
 * instance (by either comparison key, lingering sessions included), and not
 * banned. A name is held from the moment the gate grants it, synchronously,
 * so two sessions racing for look-alikes cannot both pass.
 *
 * @module
 */

import type { Identity } from "../auth/tokens.ts";
import { rank } from "../auth/tokens.ts";
import type { BanRecord, Broker, RemoteUser } from "../broker/types.ts";
import { comparisonKeys, MAX_NAME_LENGTH, MAX_NAME_UNITS, nameProblem } from "../text/names.ts";
import type { Moderation } from "./moderation.ts";
import type { User } from "./user.ts";
import type { UserDirectory } from "./users.ts";
import type { Metrics } from "../metrics.ts";
import type { Sink } from "../vocabulary/events.ts";
import type { EventFactory } from "./event_factory.ts";

/** What the {@linkcode Gate} consults. */
export interface GateOptions {
  readonly users: UserDirectory;
  readonly broker: Broker;
  readonly moderation: Moderation;
  /** Keys of the names nobody may take (see `reservedKeys`). */
  readonly reserved: ReadonlySet<string>;
}

/** Why a signed identity may not start a session. */
export type IdentityRefusal =
  | { readonly kind: "unauthorized"; readonly reason: string }
  | { readonly kind: "banned"; readonly ban: BanRecord };

/** Names and identities, admitted in one place. */
export class Gate {
  readonly #options: GateOptions;
  /** Names being claimed (a rename, a generated name), by every comparison key, with their claimant. */
  readonly #claims = new Map<string, User>();

  constructor(options: GateOptions) {
    this.#options = options;
  }

  /**
   * Why `name` is no name anybody may use (too long, invalid, reserved), or
   * `undefined`; its size is checked before anything else is done with it.
   */
  problemOf(name: string): string | undefined {
    if (name.length > MAX_NAME_UNITS) return `it is longer than ${MAX_NAME_LENGTH} characters`;
    return nameProblem(name, this.#options.reserved);
  }

  /**
   * Why `self` (or a bot, without) may not take `name` now, or `undefined`:
   * see {@linkcode Gate.problemOf}; then it must not be held or claimed by
   * anyone else (a look-alike of one's own name is one's own) nor banned.
   */
  refusalOf(name: string, self?: User): string | undefined {
    const problem = this.problemOf(name);
    if (problem !== undefined) return problem;
    if (this.#holderElse(name, self)) return "it is taken";
    if (this.#options.moderation.banOf(name, undefined) !== undefined) return "it is banned";
    return undefined;
  }

  /**
   * Who holds `name` (or a look-alike), to talk to or act on: a user here,
   * or one elsewhere. A session here still taking the name over from another
   * instance has proven nothing yet: the holder there is the one.
   */
  holderOf(name: string): { local?: User; remote?: RemoteUser } | undefined {
    if (name.length > MAX_NAME_UNITS) return undefined;
    const local = this.#options.users.find(name);
    if (local?.started) return { local };
    const remote = this.#options.broker.cluster?.names.find(name);
    if (remote !== undefined) return { remote };
    return local === undefined ? undefined : { local };
  }

  /**
   * Why the session a signed token names may not start from `address`, or
   * `undefined`: its name must pass {@linkcode Gate.problemOf}, it must not
   * be banned (a moderator's token gets past a ban of their address, a
   * shared one, say), and no other account may hold a look-alike of it.
   * The same account holding it is no refusal: the session moves here.
   */
  identityRefusal(identity: Identity, address: string | undefined): IdentityRefusal | undefined {
    const { name } = identity;
    const problem = this.problemOf(name);
    if (problem !== undefined) {
      return { kind: "unauthorized", reason: `the name in the token cannot be used: ${problem}` };
    }
    const userRank = rank(identity.roles);
    const ban = this.#options.moderation.banOf(name, userRank > 0 ? undefined : address, userRank);
    if (ban !== undefined) return { kind: "banned", ban };
    // The account's own session (the name exactly) must not hide a look-alike's.
    const { users } = this.#options;
    const own = users.find(name);
    const self = own?.name === name ? own : undefined;
    const held = users.findOther(name, self)?.name ?? this.#claimant(name, self)?.name ??
      this.#options.broker.cluster?.names.find(name)?.name;
    if (held !== undefined && held !== name) {
      return {
        kind: "unauthorized",
        reason: `the name ${name} is too like ${held}'s, who is connected`,
      };
    }
    return undefined;
  }

  /** The ban that keeps a client of `address` out (open mode, before it has a name), if any. */
  addressBan(address: string): BanRecord | undefined {
    return this.#options.moderation.banOf(undefined, address);
  }

  /** Holds `name` for `user` while the cluster is asked, so nobody here takes it meanwhile. */
  claim(name: string, user: User): void {
    for (const key of comparisonKeys(name)) this.#claims.set(key, user);
  }

  /** Lets go of a claim of `user`'s. */
  unclaim(name: string, user: User): void {
    for (const key of comparisonKeys(name)) {
      if (this.#claims.get(key) === user) this.#claims.delete(key);
    }
  }

  /** Forgets every claim of a session that ended. */
  forget(user: User): void {
    for (const [key, claimant] of this.#claims) {
      if (claimant === user) this.#claims.delete(key);
    }
  }

  /** Who other than `self` is claiming `name` (or a look-alike), under any key. */
  #claimant(name: string, self?: User): User | undefined {
    for (const key of comparisonKeys(name)) {
      const claimant = this.#claims.get(key);
      if (claimant !== undefined && claimant !== self) return claimant;
    }
    return undefined;
  }

  #holderElse(name: string, self: User | undefined): boolean {
    if (this.#options.users.findOther(name, self) !== undefined) return true;
    if (this.#claimant(name, self) !== undefined) return true;
    return this.#options.broker.cluster?.names.find(name) !== undefined;
  }
}

/**
 * Tells a client whose session cannot start now, but may in a few seconds
 * (its account is held by an instance that does not answer, or that did not
 * take the device), why; then closes it with 1013.
 */
export function tellTryLater(
  sink: Sink,
  options: { readonly metrics: Metrics; readonly events: EventFactory },
): void {
  options.metrics.connectionsClosed.inc("try_again");
  sink.send(options.events.error("unavailable", "sign_in_later", {}));
  sink.close("retry");
}
