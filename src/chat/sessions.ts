/**
 * Who is who: starting sessions under a name the whole cluster agrees on,
 * renaming, resuming a session on a new connection (here or from another
 * instance), and keeping a dropped session for its return.
 *
 * Every name goes through the {@linkcode Gate} first. A name is used only
 * once the cluster has granted it; alone that is at once, in a cluster it
 * waits for the other instances, and the user's requests wait with it.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { sameSecret } from "../auth/secrets.ts";
import { type Identity, rank } from "../auth/tokens.ts";
import type { Broker, Handover, LocalHolder, Settled } from "../broker/types.ts";
import type { ChatConfig } from "../config/mod.ts";
import { FloodGuard } from "../limits.ts";
import type { Metrics } from "../metrics.ts";
import { nameKey } from "../text/names.ts";
import type { Place, SessionStart, Sink } from "../vocabulary/events.ts";
import type { EventFactory } from "./event_factory.ts";
import { type Gate, type IdentityRefusal, tellTryLater } from "./gate.ts";
import type { Membership } from "./membership.ts";
import { settle } from "./outcome.ts";
import type { Room } from "./room.ts";
import type { RoomDirectory } from "./rooms.ts";
import { addDevice, signedInAgain } from "./devices.ts";
import type { Inboxes } from "./inboxes.ts";
import { Lingering } from "./lingering.ts";
import type { User } from "./user.ts";
import type { UserDirectory } from "./users.ts";
import { Welcomes } from "./welcome.ts";

const log = getLogger(["chat", "session"]);

/** How many generated names a session tries before it gives up on the cluster agreeing. */
const MAX_NAME_TRIES = 10;

/** What {@linkcode Sessions} works with, shared with the chatroom. */
export interface SessionsOptions {
  readonly config: ChatConfig;
  readonly now: () => number;
  readonly metrics: Metrics;
  readonly broker: Broker;
  readonly events: EventFactory;
  readonly rooms: RoomDirectory<User>;
  readonly membership: Membership;
  readonly users: UserDirectory;
  readonly generateName: (isTaken: (name: string) => boolean) => string;
  /** Runs `then` once `settled` is; the user's requests wait meanwhile, in order. */
  readonly after: <T>(user: User, settled: Settled<T>, then: (value: T) => void) => void;
  /** Ends a session: the room is told, the name released. */
  readonly end: (user: User) => void;
  /** Token mode: a signed token naming a user proves their session, on any instance. */
  readonly tokenMode: boolean;
  /** Token mode: connections one account may have open at once. */
  readonly maxDevices: number;
  /** Token mode: the accounts' private conversations. */
  readonly inboxes: Inboxes;
  /** The one admission of names and identities. */
  readonly gate: Gate;
  /** Called once a welcomed user is in their room, before its backlog (for its topic). */
  readonly entered: (user: User, room: Room<User>, to?: Sink) => void;
}

/** Settles when both do: at once when both are ready. */
function both<A, B>(a: Settled<A>, b: Settled<B>): Settled<[A, B]> {
  return a instanceof Promise || b instanceof Promise ? Promise.all([a, b]) : [a, b];
}

/** The sessions of one server. */
export class Sessions {
  readonly #options: SessionsOptions;
  /** Users whose connection dropped, waiting to be resumed. */
  readonly #lingering: Lingering;
  readonly #welcomes: Welcomes;

  constructor(options: SessionsOptions) {
    this.#options = options;
    const { config, now, metrics, users, end } = options;
    this.#lingering = new Lingering({ config, now, metrics, users, end });
    const { events, membership, rooms, entered, inboxes } = options;
    this.#welcomes = new Welcomes({ events, membership, rooms, entered, inboxes });
  }

  /**
   * Starts a session on `sink`: the user gets the name asked for when the
   * gate lets them have it (else a generated one, and the reason), enters
   * the room asked for (else the lobby) and receives what they missed of it.
   * A `token` that matches the session holding the name picks that session
   * up instead, wherever it is. A signed identity the gate refuses gets no
   * session: `sink` is told why and closed, and `undefined` returned.
   */
  start(sink: Sink, start: SessionStart): User | undefined {
    if (start.identity !== undefined) return this.#startVerified(sink, start, start.identity);
    const { gate } = this.#options;
    // Asked at the upgrade too, but a socket may wait long before it starts its session.
    const ban = start.address === undefined ? undefined : gate.addressBan(start.address);
    if (ban !== undefined) return this.#refuse(sink, { kind: "banned", ban }, start.address);
    const { token } = start;
    const requested = start.name;
    const holder = requested === undefined ? undefined : gate.holderOf(requested);
    if (
      holder?.local !== undefined && token !== undefined && sameSecret(holder.local.token, token)
    ) {
      return this.#resume(holder.local, sink, start);
    }
    this.#lingering.makeRoom(start.place, start.address);
    // Another instance holds the name (and nobody here claims it): with its token, the session moves here.
    const takeOver = holder?.remote !== undefined && token !== undefined &&
      this.#options.users.find(requested!) === undefined;
    const refusal = requested === undefined || takeOver
      ? undefined
      : this.#options.gate.refusalOf(requested);
    // A session moving here keeps its name as its holder spelled it, not as the resume did.
    const name = takeOver
      ? holder!.remote!.name
      : requested !== undefined && refusal === undefined
      ? requested
      : this.#generate();
    const user = this.#add(sink, start, name);
    if (takeOver) {
      this.#takeOver(user, start, token ?? "", () => {
        this.#claimThenWelcome(user, start, "it is taken", this.#generate());
      });
      return user;
    }
    this.#claimThenWelcome(user, start, refusal, name);
    return user;
  }

  /**
   * Token mode: the identity's name, once the gate lets it in. The same
   * account's session, here or on another instance, moves to `sink`.
   */
  #startVerified(sink: Sink, start: SessionStart, identity: Identity): User | undefined {
    const { users, broker } = this.#options;
    const refusal = this.#options.gate.identityRefusal(identity, start.address);
    if (refusal !== undefined) return this.#refuse(sink, refusal, start.address, identity.name);
    // The gate let the name in: whoever holds it is this very account.
    const holder = users.find(identity.name);
    if (holder !== undefined) {
      signedInAgain(holder, identity, this.#options.events);
      // Its rank may have changed: the other instances decide by it.
      this.#options.membership.announceName(holder);
      // A session that lingers is picked up; a live one gains a device.
      if (holder.lingering !== undefined) return this.#resume(holder, sink, start);
      // The new device alone gets the session's first events, unless it is still being welcomed.
      addDevice(holder, sink, this.#options);
      if (start.resumable === true) holder.resumable = true;
      if (holder.started) this.#welcomes.resumed(holder, start, [], 0, sink);
      return holder;
    }
    this.#lingering.makeRoom(start.place, start.address);
    const user = this.#add(sink, start, identity.name);
    if (broker.cluster?.names.find(identity.name) === undefined) {
      this.#claimThenWelcome(user, start, undefined, identity.name);
    } else {
      this.#takeOver(user, start, "", () => this.#refuseVerified(user));
    }
    return user;
  }

  /** Tells a client the gate refused why, and closes it; no session starts. */
  #refuse(
    sink: Sink,
    refusal: IdentityRefusal,
    address: string | undefined,
    name?: string,
  ): undefined {
    const { events, metrics } = this.#options;
    log.info("Refused a session of {name} from {address}: {why}", {
      name: name ?? "-",
      address,
      why: refusal.kind === "banned" ? "banned" : refusal.reason,
    });
    if (refusal.kind === "banned") {
      metrics.connectionsRefused.inc("banned");
      const until = new Date(refusal.ban.until).toISOString();
      sink.send(events.error("forbidden", "banned_until", { until, reason: refusal.ban.reason }));
      sink.close("removed");
    } else {
      metrics.connectionsClosed.inc("unauthorized");
      sink.send(events.error("unauthorized", "unauthorized", { reason: refusal.reason }));
      sink.close("unauthorized");
    }
    return undefined;
  }

  /** A new user called `name`, which the gate granted. */
  #add(sink: Sink, start: SessionStart, name: string): User {
    const opened = start.room === undefined
      ? undefined
      : this.#options.membership.open(start.room, { address: start.address });
    const user = this.#options.users.add(name, {
      sink,
      flood: new FloodGuard(this.#options.config.flood, this.#options.now()),
      room: typeof opened === "object" ? opened : this.#options.rooms.lobby,
      resumable: start.resumable ?? false,
      address: start.address,
      identity: start.identity,
    });
    if (typeof opened === "string") this.#welcomes.roomRefused(user, opened);
    return user;
  }

  /** Asks the instance holding the user's name for its session; `otherwise` when it does not give it. */
  #takeOver(user: User, start: SessionStart, token: string, otherwise: () => void): void {
    const { broker, users } = this.#options;
    const names = broker.cluster!.names;
    const verified = user.verified;
    const handover = names.takeOver(user.name, token, this.#holder(user), verified);
    this.#options.after(user, handover, (handover) => {
      if (!users.has(user)) {
        // Gone while the session was being handed over: the name it got is given up.
        if (handover !== undefined) names.withdraw(user.name);
        return;
      }
      if (handover !== undefined) return this.#welcomeBack(user, handover, start);
      otherwise();
    });
  }

  /** See {@linkcode Lingering.detach}. */
  detach(user: User, sink: Sink, place?: Place): void {
    this.#lingering.detach(user, sink, place);
  }

  /** Ends the lingering sessions whose time is up. */
  expire(): void {
    this.#lingering.expire();
  }

  /** Forgets a session that ended here: its inbox need not be read here any more. */
  forget(user: User): void {
    this.#lingering.forget(user);
    this.#options.gate.forget(user);
    // A session that ended before (a stale call) leaves the inbox to whoever holds the name now.
    if (this.#options.users.has(user)) this.#options.inboxes.unfollow(user);
  }

  /**
   * Another instance resumes the session holding `name` with `token`: ends
   * it here without a word to its room, and says where it was.
   */
  handOver(name: string, token: string, verified: boolean): Handover | undefined {
    const user = this.#options.users.find(name);
    // A signed token names exactly this user, not a look-alike.
    const proven = (verified && this.#options.tokenMode && user?.name === name) ||
      (user !== undefined && sameSecret(user.token, token));
    if (user === undefined || !user.started || !proven) return undefined;
    const lingering = user.lingering;
    if (lingering === undefined) user.sink.close("replaced");
    const privates = lingering?.notes() ?? [];
    log.info("User {id} ({name}) resumed on another instance", { id: user.id, name });
    // The name moves with the session: the other instance holds it now.
    this.endQuietly(user);
    return { room: user.room.name, privates, read: user.read.all };
  }

  /** Ends a session here without a word to its room, nor a word to the cluster about its name. */
  endQuietly(user: User): void {
    this.#options.membership.exit(user, undefined);
    // The last one here gone: the room need not be read here any more.
    if (user.room.members.size === 0) this.#options.broker.log.unfollow(user.room.name);
    this.forget(user);
    this.#options.users.remove(user);
  }

  /**
   * Renames `user`, once the cluster agrees the name is free; their room is
   * told. Settles with why not, or `undefined` once renamed.
   */
  rename(user: User, name: string): Settled<string | undefined> {
    if (name === user.name) return "it is already yours";
    const { gate, users, broker } = this.#options;
    const refusal = gate.refusalOf(name, user);
    if (refusal !== undefined) return refusal;
    // The same key is the same entry of the cluster's names: it needs no claim.
    if (nameKey(name) === nameKey(user.name)) {
      this.#applyRename(user, name);
      return undefined;
    }
    gate.claim(name, user);
    return settle(this.#claim(user, name), (granted) => {
      gate.unclaim(name, user);
      if (!users.has(user)) {
        if (granted) broker.cluster?.names.withdraw(name);
        return undefined;
      }
      if (!granted) return "it is taken";
      this.#applyRename(user, name);
      return undefined;
    });
  }

  /** A local user's name turned out to be held elsewhere: they get a generated one. */
  nameLost(user: User): void {
    log.warning("User {id} lost the name {name} to another instance", {
      id: user.id,
      name: user.name,
    });
    const name = this.#generate();
    user.sink.send(this.#options.events.error("name_refused", "name_refused", {
      name: user.name,
      reason: "it is taken",
    }));
    this.#claimGenerated(user, name, (granted) => this.#applyRename(user, granted));
  }

  #generate(): string {
    const { gate } = this.#options;
    return this.#options.generateName((candidate) => gate.refusalOf(candidate) !== undefined);
  }

  /** The user as the other instances see them. */
  #holder(user: User): LocalHolder {
    return { userId: user.id, room: user.room.name, rank: rank(user.roles) };
  }

  /** Starts reading the user's room and inbox here; settles once both are read. */
  #follow(user: User): Settled<unknown> {
    return both(
      this.#options.broker.log.follow(user.room.name),
      this.#options.inboxes.follow(user),
    );
  }

  /** Takes `name` for `user` in the cluster (at once, alone). */
  #claim(user: User, name: string): Settled<boolean> {
    return this.#options.broker.cluster?.names.claim(name, this.#holder(user)) ?? true;
  }

  /**
   * Claims the user's name and follows their room, then welcomes them;
   * when the claim is refused, claims generated names until one is granted.
   */
  #claimThenWelcome(user: User, start: SessionStart, refusal: string | undefined, name: string) {
    const { broker, users } = this.#options;
    if (user.name !== name) users.rename(user, name);
    const ready = both(this.#claim(user, name), this.#follow(user));
    this.#options.after(user, ready, ([granted]) => {
      if (!users.has(user)) {
        if (granted) broker.cluster?.names.withdraw(name);
        return;
      }
      if (granted) return this.#welcomes.welcome(user, start, refusal);
      if (user.verified) return this.#refuseVerified(user);
      const requested = start.name ?? name;
      this.#claimGenerated(user, this.#generate(), () => {
        this.#welcomes.welcome(user, { ...start, name: requested }, refusal ?? "it is taken");
      });
    });
  }

  /** Claims `name` for `user`, then generated ones until one is granted; then `done`. */
  #claimGenerated(user: User, name: string, done: (name: string) => void, tries = 1): void {
    const { broker, gate, users } = this.#options;
    gate.claim(name, user);
    this.#options.after(user, this.#claim(user, name), (granted) => {
      gate.unclaim(name, user);
      if (!users.has(user)) {
        if (granted) broker.cluster?.names.withdraw(name);
        return;
      }
      if (granted) {
        if (user.started) return done(name);
        users.rename(user, name);
        return done(name);
      }
      if (tries >= MAX_NAME_TRIES) {
        log.error("Cannot agree on a name for user {id} with the other instances", { id: user.id });
        user.sink.close("shutdown");
        return this.#options.end(user);
      }
      this.#claimGenerated(user, this.#generate(), done, tries + 1);
    });
  }

  /**
   * A signed token's name is held by a session this one could not take
   * over (another instance did not answer, as a dead one does until the
   * cluster lets its names go, or claimed it first): nothing else will do
   * now, so the client is told to try again shortly; its token is good.
   */
  #refuseVerified(user: User): void {
    log.warning("User {id} cannot have the name {name} of their token: it is held elsewhere", {
      id: user.id,
      name: user.name,
    });
    tellTryLater(user.sink, this.#options);
    this.#options.end(user);
  }

  /** Picks up `user`'s session here on a new connection, sending what they missed. */
  #resume(user: User, sink: Sink, start: SessionStart): User {
    const lingering = user.lingering;
    if (lingering === undefined) user.sink.close("replaced");
    this.#lingering.forget(user);
    user.attach(sink);
    this.#options.metrics.sessionsResumed.inc();
    log.info("User {id} ({name}) resumed", { id: user.id, name: user.name });
    // A client resuming without saying where it stopped in its inbox stopped where the session
    // did; a fresh one (a hello) knows nothing yet.
    const privates = start.privates ?? (start.resuming ? user.inboxSeen : undefined);
    this.#welcomes.resumed(
      user,
      { ...start, privates },
      lingering?.kept ?? [],
      lingering?.dropped ?? 0,
    );
    return user;
  }

  /** Goes on with a session another instance handed over. */
  #welcomeBack(user: User, handover: Handover, start: SessionStart): void {
    const { membership, rooms, events } = this.#options;
    const opened = membership.open(handover.room, { user, address: user.address });
    const room = typeof opened === "object" ? opened : rooms.lobby;
    user.room = room;
    // What its devices read comes along, for the rooms this instance knows.
    if (handover.read !== undefined) user.read.merge(handover.read, (name) => rooms.find(name));
    this.#options.after(user, this.#follow(user), () => {
      if (!this.#options.users.has(user)) return;
      user.started = true;
      this.#options.metrics.sessionsResumed.inc();
      log.info("User {id} ({name}) resumed from another instance", {
        id: user.id,
        name: user.name,
      });
      const privates = handover.privates.map((note) => events.private(note, "received"));
      this.#welcomes.resumed(user, start, privates, 0);
      membership.enter(user, room, undefined);
    });
  }

  #applyRename(user: User, name: string): void {
    const { broker, users, membership } = this.#options;
    const old = user.name;
    if (nameKey(old) !== nameKey(name)) broker.cluster?.names.withdraw(old);
    users.rename(user, name);
    broker.cluster?.names.announce(name, this.#holder(user));
    log.info("User {id} renamed from {old} to {name}", { id: user.id, old, name });
    membership.announce(user, "rename", "renamed", { oldName: old });
  }
}
