/**
 * Devices of one account on different instances: a device connected to one
 * instance whose account's session lives on another is relayed there, frame
 * by frame, over core NATS. The session's instance runs the device as it
 * runs its own sockets (every rule on the same road); the device's instance
 * carries frames both ways and closes the socket when told to.
 *
 * Frames are numbered each way: a lost one ends the link, as does an end not
 * heard of for `name_ttl` (each end speaks at least every `heartbeat`, so a
 * dead instance's devices go when its names do) and the loss of this
 * instance's link to NATS. The device is then closed with "try again", and
 * signs in again.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import type { DeviceEnd, DeviceLink, DeviceOpening, Relay, Settled } from "../types.ts";
import { DecodeError, fields, text, whole } from "../decode.ts";
import { MAX_NAME_UNITS } from "../../text/names.ts";

const log = getLogger(["chat", "cluster"]);

/** How long the session's instance may take to agree to take a device. */
const OPEN_TIMEOUT_MS = 3_000;
/** The close a device gets when its link is lost: it may sign in again at once. */
const LOST = { code: 1013, reason: "try again in a few seconds" } as const;
/** The close a device gets when an instance it depends on stops: it signs in elsewhere. */
const SHUTDOWN = { code: 1001, reason: "server shutting down" } as const;
/** UTF-16 units of one frame, at most, put together from its parts. */
const MAX_FRAME_UNITS = 16 * 1024 * 1024;
/** Parts kept, at most, that come before the session's instance said it took the device. */
const MAX_EARLY_PARTS = 4096;
/** The close codes below 3000 a server may send (the rest are reserved). */
const SENDABLE_CODES = new Set([
  1000,
  1001,
  1002,
  1003,
  1007,
  1008,
  1009,
  1010,
  1011,
  1012,
  1013,
  1014,
]);
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
  /** The device's side, until the session's agreed: what came meanwhile. */
  early?: Part[];
}

/** One part of what goes through a link (`k`: frame, binary frame, close, ping). */
interface Part {
  readonly id: string;
  readonly n: number;
  readonly k: "f" | "b" | "c" | "p";
  /** A frame's text, or a part of it when `more`. */
  readonly d?: string;
  readonly more?: boolean;
  readonly code?: number;
  readonly reason?: string;
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
  ): Promise<DeviceLink | undefined> {
    const id = crypto.randomUUID();
    // Kept from now: the session's side may send before its answer is read here.
    const { link, way } = this.#add(id, instance, end, []);
    try {
      const answer = await this.#options.nc.request(
        `chat.relay.${instance}.open`,
        JSON.stringify({ ...opening, id, from: this.#options.instance }),
        { timeout: OPEN_TIMEOUT_MS },
      );
      if (fields(parse(answer.string()), "an answer to a device").ok !== true) {
        this.#links.delete(id);
        return undefined;
      }
    } catch (error) {
      log.warning("Instance {instance} did not take a device of {name}: {error}", {
        instance,
        name: opening.name,
        error,
      });
      // It may have taken it after all: it is told, and the device starts here.
      way.close(LOST.code, LOST.reason);
      return undefined;
    }
    const early = link.early ?? [];
    link.early = undefined;
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
    this.#subscriptions.push(opens, parts);
    this.#read(opens, async (message) => {
      const refuse = () => message.respond(JSON.stringify({ ok: false }));
      let opening: DeviceOpening & { id: string; from: string };
      try {
        opening = readOpening(message.string());
      } catch (error) {
        this.#options.malformed(opens.getSubject(), error);
        return refuse();
      }
      const { id, from, ...rest } = opening;
      if (this.#take === undefined || this.#links.has(id)) return refuse();
      let end: DeviceEnd | undefined;
      // Nothing comes from the device before the answer; what is sent to it meanwhile waits there.
      const { link, way } = this.#add(id, from, {
        frame: (data) => end?.frame(data),
        ended: (code, reason) => end?.ended(code, reason),
      });
      try {
        end = await this.#take(rest, way);
      } catch (error) {
        log.error("Cannot take a device of {name}: {error}", { name: rest.name, error });
      }
      if (end === undefined || this.#links.get(id) !== link) {
        this.#links.delete(id);
        return refuse();
      }
      message.respond(JSON.stringify({ ok: true }));
    });
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
    };
    this.#links.set(id, link);
    const way: DeviceLink = {
      send: (data) => {
        if (this.#links.get(id) !== link) return;
        if (typeof data !== "string") return this.#post(link, { k: "b" });
        // A frame longer than one NATS message takes goes in parts.
        const size = Math.max(1024, Math.floor((this.#options.maxPayload() - ENVELOPE_BYTES) / 6));
        for (let at = 0; at === 0 || at < data.length; at += size) {
          const rest = at + size < data.length;
          this.#post(
            link,
            rest ? { k: "f", d: data.slice(at, at + size), more: true } : {
              k: "f",
              d: data.slice(at),
            },
          );
        }
      },
      close: (code, reason) => {
        if (this.#links.get(id) !== link) return;
        this.#links.delete(id);
        this.#post(link, { k: "c", code, reason });
      },
    };
    return { link, way };
  }

  #post(link: Link, part: Omit<Part, "id" | "n">): void {
    link.sentAt = Date.now();
    try {
      this.#options.nc.publish(
        `chat.relay.${link.peer}`,
        JSON.stringify({ id: link.id, n: ++link.sent, ...part }),
      );
    } catch (error) {
      this.#lose(link, error instanceof Error ? error.message : String(error));
    }
  }

  #receive(part: Part): void {
    const link = this.#links.get(part.id);
    if (link === undefined) return;
    if (link.early !== undefined) {
      if (link.early.length < MAX_EARLY_PARTS) link.early.push(part);
      else this.#lose(link, "too much came before the device was taken");
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
    handle: (message: { string(): string; respond(data: string): boolean }) => unknown,
  ): void {
    (async () => {
      for await (const message of subscription) await handle(message);
    })().catch((error) =>
      log.error("Stopped relaying devices on {subject}: {error}", {
        subject: subscription.getSubject(),
        error,
      })
    );
  }
}

function parse(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw new DecodeError("not JSON");
  }
}

/** A request to take a device, as another instance sends it. */
function readOpening(data: string): DeviceOpening & { id: string; from: string } {
  const record = fields(parse(data), "a device's opening");
  const protocol = record.protocol;
  if (protocol !== "v1" && protocol !== "v2") {
    throw new DecodeError('a device\'s opening needs a "protocol" of v1 or v2');
  }
  const optional = (key: string, max: number) =>
    record[key] === undefined ? undefined : text(record, key, "a device's opening", max);
  return {
    id: text(record, "id", "a device's opening", 64),
    from: text(record, "from", "a device's opening", 64),
    name: text(record, "name", "a device's opening", MAX_NAME_UNITS),
    protocol,
    address: optional("address", 64),
    room: optional("room", 1024),
    token: optional("token", 16 * 1024),
  };
}

/** One part of what a link carries. */
function readPart(data: string): Part {
  const record = fields(parse(data), "a relayed part");
  const k = record.k === "f" || record.k === "b" || record.k === "c" || record.k === "p"
    ? record.k
    : undefined;
  if (k === undefined) throw new DecodeError('a relayed part needs a "k" of f, b, c or p');
  const part: Part = {
    id: text(record, "id", "a relayed part", 64),
    n: whole(record, "n", "a relayed part"),
    k,
  };
  if (k === "f") {
    return { ...part, d: text(record, "d", "a relayed part"), more: record.more === true };
  }
  if (k !== "c") return part;
  const code = whole(record, "code", "a relayed close");
  if (!SENDABLE_CODES.has(code) && !(code >= 3000 && code <= 4999)) {
    throw new DecodeError(`a relayed close has a code no socket may send: ${code}`);
  }
  return { ...part, code, reason: text(record, "reason", "a relayed close", 123) };
}
