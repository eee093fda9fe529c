/**
 * Devices of one account on different instances: a device connected to one
 * instance whose account's session lives on another is relayed there, frame
 * by frame, over core NATS. The session's instance runs the device as it
 * runs its own sockets (every rule on the same road); the device's instance
 * carries frames both ways and closes the socket when told to.
 *
 * Frames are numbered each way: a lost one ends the link, as does the other
 * instance no longer listening (NATS answers "no responders" to the next
 * part sent there once it has seen that instance go: a frame, or a ping),
 * an end not heard of for `name_ttl` (each end speaks at least every
 * `heartbeat`), and the loss of this instance's link to NATS. The device is
 * then closed with "try again", and signs in again.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import {
  type DeviceEnd,
  type DeviceLink,
  type DeviceOpening,
  type Relay,
  type Settled,
} from "../types.ts";
import { type Fields, fields } from "../decode.ts";
import { parse, type Part, readOpening, readPart } from "./wire.ts";

const log = getLogger(["chat", "cluster"]);

/** How long the session's instance may take to agree to take a device. */
export const OPEN_TIMEOUT_MS = 3_000;
/** The close a device gets when its link is lost: it may sign in again at once. */
const LOST = { code: 1013, reason: "try again in a few seconds" } as const;
/** The close a device gets when an instance it depends on stops: it signs in elsewhere. */
const SHUTDOWN = { code: 1001, reason: "server shutting down" } as const;
/**
 * UTF-16 units of one frame, at most, put together from its parts (and of
 * what comes before a device is taken): a client's frame is at most
 * `max_frame_bytes`, a server's a batch of 256 events.
 */
const MAX_FRAME_UNITS = 4 * 1024 * 1024;
/** Openings being taken at once, at most; past it, devices are told to try again. */
const MAX_TAKING = 64;
/** Bytes of a part's envelope, at most (its JSON keys, id and number). */
const ENVELOPE_BYTES = 256;

/** One relayed device, at either end. */
interface Link {
  readonly id: string;
  /** The instance at the other end. */
  readonly peer: string;
  readonly end: DeviceEnd;
  /** Number of the last part sent and received. */
  sent: number;
  received: number;
  sentAt: number;
  heardAt: number;
  /** The parts of a long frame received so far. */
  parts: string[];
  units: number;
  /** The device's side, until the session's agreed: what came meanwhile, and its length. */
  early?: Part[];
  earlyUnits: number;
}

/** What {@linkcode NatsRelay} works with. */
export interface NatsRelayOptions {
  readonly nc: NatsConnection;
  readonly instance: string;
  /** The largest payload the NATS server takes now. */
  readonly maxPayload: () => number;
  /** A message could not be read. */
  readonly malformed: (subject: string, error: unknown) => void;
  /** A link was lost (not closed by either end). */
  readonly lost: () => void;
  /** An end that has sent nothing for this long says it is still there... */
  readonly pingMs: number;
  /** ...and one not heard of for this long is gone. */
  readonly silentMs: number;
}

/** Relayed devices, both ways, of one instance. */
export class NatsRelay implements Relay {
  readonly #options: NatsRelayOptions;
  readonly #links = new Map<string, Link>();
  readonly #subscriptions: Subscription[] = [];
  #take: ((opening: DeviceOpening, link: DeviceLink) => Settled<DeviceEnd | undefined>) | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Openings being taken now. */
  #taking = 0;

  constructor(options: NatsRelayOptions) {
    this.#options = options;
  }

  /** Devices relayed now, either way. */
  get size(): number {
    return this.#links.size;
  }

  async open(
    instance: string,
    opening: DeviceOpening,
    end: DeviceEnd,
  ): Promise<DeviceLink | "not_live" | "unavailable"> {
    const id = crypto.randomUUID();
    // Kept from now: the session's side may send before its answer is read here.
    const { link, way } = this.#add(id, instance, end, []);
    let answer: Fields;
    try {
      const reply = await this.#options.nc.request(
        `chat.relay.${instance}.open`,
        JSON.stringify({ ...opening, id, from: this.#options.instance }),
        { timeout: OPEN_TIMEOUT_MS },
      );
      answer = fields(parse(reply.string()), "an answer to a device");
    } catch (error) {
      log.warning("Instance {instance} did not take a device of {name}: {error}", {
        instance,
        name: opening.name,
        error,
      });
      // It may have taken it after all: it is told.
      way.close(LOST.code, LOST.reason);
      return "unavailable";
    }
    if (answer.ok !== true) {
      this.#links.delete(id);
      return answer.live === false ? "not_live" : "unavailable";
    }
    const early = link.early ?? [];
    link.early = undefined;
    link.earlyUnits = 0;
    for (const part of early) this.#receive(part);
    return way;
  }

  serve(take: (opening: DeviceOpening, link: DeviceLink) => Settled<DeviceEnd | undefined>): void {
    this.#take = take;
  }

  /** Starts answering devices relayed here and reading what links carry. */
  listen(): void {
    const { nc, instance } = this.#options;
    const opens = nc.subscribe(`chat.relay.${instance}.open`);
    const parts = nc.subscribe(`chat.relay.${instance}`);
    const gone = nc.subscribe(`chat.relay.${instance}.gone.*`);
    this.#subscriptions.push(opens, parts, gone);
    // NATS says so at once when a part went to an instance nobody listens for any more.
    this.#read(gone, (message) => {
      if (message.headers?.code !== 503) return;
      const peer = message.subject.slice(`chat.relay.${instance}.gone.`.length);
      for (const link of [...this.#links.values()]) {
        if (link.peer === peer) this.#lose(link, "the other instance is gone");
      }
    });
    // Each opening is answered on its own: one slow to take holds up no other.
    this.#read(opens, (message) => void this.#answer(message));
    this.#read(parts, (message) => {
      try {
        this.#receive(readPart(message.string()));
      } catch (error) {
        this.#options.malformed(parts.getSubject(), error);
      }
    });
    this.#timer = setInterval(() => this.#check(), this.#options.pingMs / 2);
  }

  /** NATS is away: every link may have lost parts, so every device starts again. */
  disconnected(): void {
    for (const link of [...this.#links.values()]) this.#lose(link, "the link to NATS dropped");
  }

  /** This instance stops: every device relayed either way is closed, and the other end told. */
  close(): void {
    clearInterval(this.#timer);
    for (const subscription of this.#subscriptions) subscription.unsubscribe();
    for (const link of [...this.#links.values()]) {
      this.#links.delete(link.id);
      this.#post(link, { k: "c", ...SHUTDOWN });
      link.end.ended(SHUTDOWN.code, SHUTDOWN.reason);
    }
  }

  /**
   * Answers another instance asking this one to take a device: `ok`, or
   * `live: false` when the account's session is not live here (the device
   * may start its own), or a plain refusal (it is told to try again).
   */
  async #answer(message: Msg): Promise<void> {
    const respond = (answer: object) => {
      try {
        message.respond(JSON.stringify(answer));
      } catch (error) {
        log.warning("Cannot answer a device's opening: {error}", { error });
      }
    };
    let opening: DeviceOpening & { id: string; from: string };
    try {
      opening = readOpening(message.string());
    } catch (error) {
      this.#options.malformed(`chat.relay.${this.#options.instance}.open`, error);
      return respond({ ok: false });
    }
    const { id, from, ...rest } = opening;
    if (this.#take === undefined || this.#links.has(id) || this.#taking >= MAX_TAKING) {
      return respond({ ok: false });
    }
    let end: DeviceEnd | undefined;
    // Nothing comes from the device before the answer; what is sent to it meanwhile waits there.
    const { link, way } = this.#add(id, from, {
      frame: (data) => end?.frame(data),
      ended: (code, reason) => end?.ended(code, reason),
    });
    this.#taking++;
    let refusal: object | undefined;
    try {
      end = await this.#take(rest, way);
      if (end === undefined) refusal = { ok: false, live: false };
    } catch (error) {
      log.warning("Cannot take a device of {name}: {error}", { name: rest.name, error });
      refusal = { ok: false };
    } finally {
      this.#taking--;
    }
    if (refusal !== undefined || end === undefined) {
      this.#links.delete(id);
      return respond(refusal ?? { ok: false });
    }
    // Gone already: closed here while it started (refused: what it was told and the close wait
    // on the device's side, which reads them once answered), or by the device's side, which gave
    // up waiting (whatever started here ends; a late answer goes nowhere).
    if (this.#links.get(id) !== link) end.ended(LOST.code, LOST.reason);
    respond({ ok: true });
  }

  /** A link of `id` with `peer`; `early` keeps what comes before the other end agreed. */
  #add(
    id: string,
    peer: string,
    end: DeviceEnd,
    early?: Part[],
  ): { link: Link; way: DeviceLink } {
    const now = Date.now();
    const link: Link = {
      id,
      peer,
      end,
      sent: 0,
      received: 0,
      sentAt: now,
      heardAt: now,
      parts: [],
      units: 0,
      early,
      earlyUnits: 0,
    };
    this.#links.set(id, link);
    const way: DeviceLink = {
      send: (data) => {
        if (this.#links.get(id) !== link) return;
        if (typeof data === "string") this.#sendFrame(link, data);
        else this.#post(link, { k: "b" });
      },
      close: (code, reason) => {
        if (this.#links.get(id) !== link) return;
        this.#links.delete(id);
        this.#post(link, { k: "c", code, reason });
      },
    };
    return { link, way };
  }

  /** Sends a frame, in parts when it is longer than one NATS message takes. */
  #sendFrame(link: Link, data: string): void {
    // A UTF-16 unit takes 6 bytes of JSON at most (`\uXXXX`); a pair cut in two is joined again.
    const size = Math.max(64, Math.floor((this.#options.maxPayload() - ENVELOPE_BYTES) / 6));
    let at = 0;
    for (; data.length - at > size; at += size) {
      this.#post(link, { k: "f", d: data.slice(at, at + size), more: true });
      // Lost on the way (a part could not be sent): the rest goes nowhere.
      if (this.#links.get(link.id) !== link) return;
    }
    this.#post(link, { k: "f", d: data.slice(at) });
  }

  #post(link: Link, part: Omit<Part, "id" | "n">): void {
    link.sentAt = Date.now();
    try {
      this.#options.nc.publish(
        `chat.relay.${link.peer}`,
        JSON.stringify({ id: link.id, n: ++link.sent, ...part }),
        // Never answered; but when the peer no longer listens, NATS answers "no responders".
        { reply: `chat.relay.${this.#options.instance}.gone.${link.peer}` },
      );
    } catch (error) {
      this.#lose(link, error instanceof Error ? error.message : String(error));
    }
  }

  #receive(part: Part): void {
    const link = this.#links.get(part.id);
    if (link === undefined) return;
    if (link.early !== undefined) {
      link.earlyUnits += part.d?.length ?? 0;
      if (link.earlyUnits > MAX_FRAME_UNITS) {
        return this.#lose(link, "too much came before the device was taken");
      }
      link.early.push(part);
      return;
    }
    if (part.n !== link.received + 1) return this.#lose(link, `part ${link.received + 1} was lost`);
    link.received = part.n;
    link.heardAt = Date.now();
    switch (part.k) {
      case "p":
        return;
      case "b":
        return link.end.frame(new ArrayBuffer(0));
      case "c":
        this.#links.delete(link.id);
        return link.end.ended(part.code ?? 1000, part.reason ?? "");
      case "f": {
        const data = part.d ?? "";
        link.units += data.length;
        if (link.units > MAX_FRAME_UNITS) return this.#lose(link, "a frame was too long");
        link.parts.push(data);
        if (part.more === true) return;
        const frame = link.parts.length === 1 ? data : link.parts.join("");
        link.parts = [];
        link.units = 0;
        return link.end.frame(frame);
      }
    }
  }

  /** Pings the links that said nothing for a while; ends those not heard of for too long. */
  #check(): void {
    const now = Date.now();
    for (const link of [...this.#links.values()]) {
      // One waiting for its answer is bounded by the request's timeout.
      if (link.early !== undefined) continue;
      if (now - link.heardAt > this.#options.silentMs) {
        this.#lose(link, "the other end fell silent");
      } else if (now - link.sentAt >= this.#options.pingMs) this.#post(link, { k: "p" });
    }
  }

  /** Ends a link that broke: the other end is told if it can be, and the device closed. */
  #lose(link: Link, why: string): void {
    if (this.#links.get(link.id) !== link) return;
    this.#links.delete(link.id);
    this.#options.lost();
    log.info("Lost the relayed device {id} with instance {peer}: {why}", {
      id: link.id,
      peer: link.peer,
      why,
    });
    try {
      this.#options.nc.publish(
        `chat.relay.${link.peer}`,
        JSON.stringify({ id: link.id, n: ++link.sent, k: "c", ...LOST }),
      );
    } catch {
      // The other end finds out when it hears nothing more.
    }
    link.end.ended(LOST.code, LOST.reason);
  }

  #read(
    subscription: Subscription,
    handle: (message: Msg) => void,
  ): void {
    (async () => {
      for await (const message of subscription) {
        handle(message);
      }
    })().catch((error) =>
      log.error("Stopped relaying devices on {subject}: {error}", {
        subject: subscription.getSubject(),
        error,
      })
    );
  }
}
