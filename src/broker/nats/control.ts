/**
 * What goes straight from one instance to another over core NATS, each on
 * the subject of the target's instance: private messages, kicks (answered
 * with what came of them, so a moderator is told "Done" only when it was
 * done) and session handovers.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import type {
  BrokerHandler,
  Handover,
  KickNote,
  KickResult,
  Mail,
  PrivateNote,
  RemoteUser,
  Sent,
} from "../types.ts";
import { fields } from "../decode.ts";
import {
  parse,
  readKickNote,
  readKickResult,
  readPrivateNote,
  readRankReply,
  readRankRequest,
  readTakeoverReply,
  readTakeoverRequest,
} from "./wire.ts";

/** How long a handover or a kick may take before it is given up. */
const REPLY_TIMEOUT_MS = 3000;
/**
 * A handover or a kick older than this when it arrives (held up on a stalled
 * link) is refused: its sender may have stopped waiting, and acting on it
 * would act for nobody. The rest of the wait is for the answer's way back
 * and for the instances' clocks, which must agree to well within it.
 */
const MAX_REQUEST_AGE_MS = REPLY_TIMEOUT_MS / 2;

/**
 * Whether a request, by the send time it carries, is older than
 * {@linkcode MAX_REQUEST_AGE_MS}; each one refused so is logged, with its
 * age (a stalled link, or clocks that do not agree).
 */
function heldUp(data: string, what: string): boolean {
  const { sentAt } = fields(parse(data), "a request");
  const age = typeof sentAt === "number" ? Date.now() - sentAt : 0;
  if (age <= MAX_REQUEST_AGE_MS) return false;
  log.warning("Refused {what} that arrived {age} ms after it was sent", { what, age });
  return true;
}

const log = getLogger(["chat", "cluster"]);

/** What {@linkcode InstanceMail} works with. */
export interface InstanceMailOptions {
  readonly nc: NatsConnection;
  /** This instance's id. */
  readonly instance: string;
  /** A message could not be read. */
  readonly malformed: (subject: string, error: unknown) => void;
  /** A session was handed to another instance: its name is not this instance's any more. */
  readonly handedOver: (name: string) => void;
  /** A message was larger than the NATS server takes. */
  readonly oversized: () => void;
  /** `max_message_len`: a private message longer than a user could send is refused. */
  readonly maxText: number;
}

/** The direct messages of one instance, both ways. */
export class InstanceMail implements Mail {
  readonly #options: InstanceMailOptions;
  readonly #subscriptions: Subscription[] = [];

  constructor(options: InstanceMailOptions) {
    this.#options = options;
  }

  sendPrivate(note: PrivateNote, to: RemoteUser): Sent {
    try {
      this.#options.nc.publish(`chat.pm.${to.instance}`, JSON.stringify(note));
      return "sent";
    } catch (error) {
      log.warning("Cannot send a private message to {instance}: {error}", {
        instance: to.instance,
        error,
      });
      if (!/max_payload/.test(String(error))) return "unavailable";
      this.#options.oversized();
      return "too_large";
    }
  }

  /** Asks the target's instance to remove them; `unavailable` when it does not answer. */
  async kick(note: KickNote, to: RemoteUser): Promise<KickResult> {
    try {
      const answer = await this.#options.nc.request(
        `chat.kick.${to.instance}`,
        JSON.stringify({ ...note, sentAt: Date.now() }),
        { timeout: REPLY_TIMEOUT_MS },
      );
      return readKickResult(answer.string());
    } catch (error) {
      log.warning("Instance {instance} did not answer a kick of {name}: {error}", {
        instance: to.instance,
        name: note.name,
        error,
      });
      return "unavailable";
    }
  }

  async rankOf(to: RemoteUser): Promise<number | undefined> {
    try {
      const answer = await this.#options.nc.request(
        `chat.rank.${to.instance}`,
        JSON.stringify({ name: to.name }),
        { timeout: REPLY_TIMEOUT_MS },
      );
      return readRankReply(answer.string());
    } catch (error) {
      log.warning("Instance {instance} did not say the rank of {name}: {error}", {
        instance: to.instance,
        name: to.name,
        error,
      });
      return to.rank;
    }
  }

  /** Asks `instance` to hand over the session holding `name`; `undefined` when it does not. */
  async takeOver(
    instance: string,
    request: { name: string; token: string; verified: boolean },
  ): Promise<Handover | undefined> {
    try {
      const answer = await this.#options.nc.request(
        `chat.ctl.${instance}`,
        JSON.stringify({ ...request, sentAt: Date.now() }),
        { timeout: REPLY_TIMEOUT_MS },
      );
      const reply = readTakeoverReply(answer.string(), this.#options.maxText);
      return reply.ok
        ? { room: reply.room, privates: reply.privates, read: reply.read }
        : undefined;
    } catch (error) {
      log.warning("Instance {instance} did not hand {name} over: {error}", {
        instance,
        name: request.name,
        error,
      });
      return undefined;
    }
  }

  /** Starts answering what other instances send this one. */
  listen(handler: BrokerHandler): void {
    const { instance } = this.#options;
    this.#serve(`chat.pm.${instance}`, (data) => {
      handler.deliverPrivate(readPrivateNote(data, this.#options.maxText));
      return undefined;
    });
    this.#serve(`chat.kick.${instance}`, (data) => {
      const note = readKickNote(data);
      const late = heldUp(data, `a kick of ${note.name}`);
      const result = late ? "unavailable" : handler.deliverKick(note);
      return JSON.stringify({ result });
    }, JSON.stringify({ result: "not_found" }));
    this.#serve(`chat.rank.${instance}`, (data) => {
      return JSON.stringify({ rank: handler.rankOf(readRankRequest(data)) ?? null });
    }, JSON.stringify({ rank: null }));
    this.#serve(`chat.ctl.${instance}`, (data) => {
      const { name, token, verified } = readTakeoverRequest(data);
      const late = heldUp(data, `a handover of ${name}`);
      const handover = late ? undefined : handler.handOver(name, token, verified);
      if (handover !== undefined) this.#options.handedOver(name);
      return JSON.stringify(
        handover === undefined ? { ok: false } : {
          ok: true,
          room: handover.room,
          privates: handover.privates,
          read: Object.fromEntries(handover.read ?? []),
        },
      );
    }, JSON.stringify({ ok: false }));
  }

  /** Stops answering. */
  close(): void {
    for (const subscription of this.#subscriptions) subscription.unsubscribe();
  }

  /**
   * Handles each message of `subject`; what `answer` returns is the reply,
   * and `refusal` answers a message that could not be read.
   */
  #serve(subject: string, answer: (data: string) => string | undefined, refusal?: string): void {
    const subscription = this.#options.nc.subscribe(subject);
    this.#subscriptions.push(subscription);
    (async () => {
      for await (const message of subscription) {
        try {
          const reply = answer(message.string());
          if (reply !== undefined) message.respond(reply);
        } catch (error) {
          this.#options.malformed(subject, error);
          if (refusal !== undefined) message.respond(refusal);
        }
      }
    })().catch((error) => log.error("Stopped answering {subject}: {error}", { subject, error }));
  }
}
