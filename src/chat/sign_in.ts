/**
 * Token mode's sessions over time: a user whose signed token soon expires is
 * warned, one whose token expired is closed with 4001, and a fresh token for
 * the same user renews the session.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Identity, rank } from "../auth/tokens.ts";
import type { Settled } from "../broker/types.ts";
import type { Metrics } from "../metrics.ts";
import type { EventFactory } from "./event_factory.ts";
import { DONE, type Outcome } from "./outcome.ts";
import type { User } from "./user.ts";

const log = getLogger(["chat", "session"]);

/** The parts of `auth` the chat applies. */
export interface ChatAuth {
  /** Token mode: names come from signed tokens, which expire. */
  readonly tokenMode: boolean;
  /** Checks a fresh token sent with `refresh`. */
  readonly verify?: (token: string) => Promise<Identity>;
  /** Seconds before a token expires that its user is warned. */
  readonly expiryWarning: number;
  /** Token mode: connections one account may have open at once (5 when not given). */
  readonly maxDevices?: number;
  /** Open mode: `!op <password>` makes a moderator. */
  readonly operatorPassword?: string;
}

/** What {@linkcode SignIns} works with, shared with the chatroom. */
export interface SignInsOptions {
  readonly auth: ChatAuth;
  readonly now: () => number;
  readonly events: EventFactory;
  readonly metrics: Metrics;
  /** Ends a session: the room is told, the name released. */
  readonly end: (user: User) => void;
  /** A fresh token renewed a session: its roles may have changed, and other instances decide by them. */
  readonly renewed: (user: User) => void;
}

/** The signed tokens of one server's sessions. */
export class SignIns {
  readonly #options: SignInsOptions;

  constructor(options: SignInsOptions) {
    this.#options = options;
  }

  /** Warns whose token soon expires, and closes whose token has; call every second or so. */
  expire(users: readonly User[]): void {
    const { auth, now, events, metrics } = this.#options;
    if (!auth.tokenMode) return;
    const time = now();
    const warnAt = auth.expiryWarning * 1000;
    for (const user of users) {
      const expiresAt = user.expiresAt;
      if (expiresAt === undefined || !user.started) continue;
      if (expiresAt <= time) {
        log.info("Closing user {id} ({name}): their token expired", {
          id: user.id,
          name: user.name,
        });
        metrics.connectionsClosed.inc("unauthorized");
        user.sink.send(events.error("unauthorized", "expired", {}));
        user.sink.close("unauthorized");
        this.#options.end(user);
      } else if (!user.expiryWarned && expiresAt - time <= warnAt) {
        user.expiryWarned = true;
        const seconds = String(Math.ceil((expiresAt - time) / 1000));
        user.sink.send(events.system("expiry_warning", { seconds }));
      }
    }
  }

  /** A fresh token for the same user renews the session before it expires. */
  refresh(user: User, token: string): Settled<Outcome> {
    const { auth, events } = this.#options;
    // Only token mode's users may ask (see the request table), and token mode checks tokens.
    const verify = auth.verify;
    if (verify === undefined) throw new TypeError("Cannot renew a sign-in with no verifier");
    const refused = (reason: string): Outcome => ({
      ok: false,
      error: events.error("unauthorized", "unauthorized", { reason }),
    });
    return verify(token).then((identity): Outcome => {
      if (identity.name !== user.name) return refused(`the token names ${identity.name}, not you`);
      user.renew(identity);
      this.#options.renewed(user);
      user.sink.send({ ...events.system("refreshed", {}), rank: rank(user.roles) });
      return DONE;
    }, (error: unknown) => refused(error instanceof Error ? error.message : String(error)));
  }
}
