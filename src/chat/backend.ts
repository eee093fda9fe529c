/**
 * What the server API reads of the chat: rooms, members, history and bans.
 * What it asks the chat to do (messages, kicks, bans) takes the road every
 * request takes (see `requests.ts`).
 *
 * @module
 */

import type { Broker } from "../broker/types.ts";
import type { MessageEvent, RoomSummary } from "../vocabulary/events.ts";
import type { Membership } from "./membership.ts";
import type { Moderation } from "./moderation.ts";
import type { RoomDirectory } from "./rooms.ts";
import type { User } from "./user.ts";

/** What {@linkcode Backend} works with, shared with the chatroom. */
export interface BackendOptions {
  readonly broker: Broker;
  readonly rooms: RoomDirectory<User>;
  readonly membership: Membership;
  readonly moderation: Moderation;
}

/** The chat as the server API reads it. */
export class Backend {
  readonly #options: BackendOptions;

  constructor(options: BackendOptions) {
    this.#options = options;
  }

  /** Every room in the cluster, with its members everywhere and its topic. */
  roomSummaries(): RoomSummary[] {
    return this.#options.membership.summaries().map((summary) => {
      const topic = this.#options.moderation.settings.topicOf(summary.name);
      return topic === undefined ? summary : { ...summary, topic };
    });
  }

  /** Who is in the room called `name`, here and elsewhere; `undefined` when there is no such room. */
  membersOf(name: string): { room: string; members: string[] } | undefined {
    this.#options.membership.learnRemoteRooms();
    const room = this.#options.rooms.find(name);
    if (room === undefined) return undefined;
    const members = [...room.members].map((member) => member.name);
    for (const other of this.#options.broker.cluster?.names.members(room.name) ?? []) {
      members.push(other.name);
    }
    return { room: room.name, members };
  }

  /**
   * The kept messages of the room called `name`: the newest `limit`, or,
   * after a position (`since`, with its epoch), the oldest `limit` after it
   * (`more` when there are others) and the reason some may be missing.
   * `undefined` when there is no such room; throws when the cluster cannot
   * be read in time.
   */
  async historyOf(
    name: string,
    since: { epoch?: string; seq: number } | undefined,
    limit: number,
  ): Promise<
    | { room: string; epoch: string; gap?: string; more: boolean; messages: MessageEvent[] }
    | undefined
  > {
    const read = this.#options.membership.whileRead(name, (room) => {
      if (since === undefined) {
        const messages = [...room.recent(limit)];
        return { room: room.name, epoch: room.epoch, more: false, messages };
      }
      const { messages, gap } = room.backlogAfter(since.epoch, since.seq);
      return {
        room: room.name,
        epoch: room.epoch,
        gap,
        more: messages.length > limit,
        messages: messages.slice(0, limit),
      };
    });
    return await read.catch(() => {
      throw new Error(`the history of ${name} could not be read in time`);
    });
  }
}
