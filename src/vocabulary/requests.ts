/**
 * THE request table: every request the chat handles, declared once with its
 * arguments (kinds, bounds, optional or not), its `!` spelling, who may make
 * it, its server API route if it has one, and the words `!help` and the
 * docs show. The text decoder, the v2 decoder, the API's routes, `!help`
 * (and so the browser's hints) and the README's command tables are all
 * derived from it, so the roads cannot disagree.
 *
 * To add a request: declare it here, give it a handler in `src/chat/`, test it.
 *
 * @module
 */

import { MAX_SLOW_SECONDS } from "../text/duration.ts";
import {
  type Arg,
  type ArgValue,
  commandName,
  conversationWith,
  count,
  duration,
  message,
  messageId,
  note,
  otherRoom,
  removeCount,
  roomName,
  seconds,
  secret,
  seen,
  target,
  topic,
  userName,
} from "./arguments.ts";

/**
 * Who may make a request: anyone; moderators; open mode's users (`!op`);
 * token mode's users (`!refresh`).
 */
export type Who = "everyone" | "moderators" | "open" | "token";

/** A request's route in the server API. */
export interface ApiRoute {
  readonly method: "POST" | "DELETE";
  /** The path after `/api/v1`; a `:param` fills the argument of that name. */
  readonly path: string;
  /**
   * Who the API acts as: a bot named by the body's `from` (in the path's
   * `:room`, for a message), or the API itself, as a moderator above all.
   */
  readonly as: "bot" | "moderator";
  /** The status of success. */
  readonly status: 200 | 201 | 202;
}

/** How one request is read and shown, whatever the road. */
export interface RequestSpec<A extends Readonly<Record<string, Arg<unknown>>>> {
  /** Its arguments, in the order the text protocol spells them. */
  readonly args: A;
  /** The `!` command that spells it (the request's type when absent); `false` for none. */
  readonly command?: string | false;
  /** One line for `!help`. */
  readonly summary: string;
  /** What it does, for the README's table. */
  readonly description: string;
  /** Which README table lists it. */
  readonly section: "chat" | "moderation";
  /** Who may make it; a function when it depends on the arguments. */
  readonly who: Who | ((request: ArgsOf<A>) => Who);
  readonly api?: ApiRoute;
}

/** The arguments of a request: required ones always there, optional ones maybe. */
export type ArgsOf<A> =
  & { readonly [K in keyof A as A[K] extends Arg<unknown, false> ? K : never]: ArgValue<A[K]> }
  & { readonly [K in keyof A as A[K] extends Arg<unknown, true> ? K : never]?: ArgValue<A[K]> };

function define<A extends Readonly<Record<string, Arg<unknown>>>>(
  spec: RequestSpec<A>,
): RequestSpec<A> {
  return spec;
}

/** Every request, in the order `!help` lists them. */
export const REQUESTS = {
  say: define({
    args: { text: message("message") },
    command: false,
    summary: "says something in your room",
    description: "says something in your room (any text that does not start with `!`)",
    section: "chat",
    who: "everyone",
    api: { method: "POST", path: "/rooms/:room/messages", as: "bot", status: 202 },
  }),
  help: define({
    args: { command: commandName() },
    summary: "lists the commands, or explains one",
    description: "lists every command with a one-line description, or explains one",
    section: "chat",
    who: "everyone",
  }),
  about: define({
    args: {},
    summary: "describes this server",
    description: "a short description of the server",
    section: "chat",
    who: "everyone",
  }),
  setname: define({
    args: { name: userName({ label: "new name", rest: true }) },
    summary: "changes your name",
    description: "changes your name (whitespace is removed); your room is told",
    section: "chat",
    who: "everyone",
  }),
  members: define({
    args: {},
    command: "who",
    summary: "lists the users in your room",
    description: "the users in your room: `Connected Users: a, b, c`",
    section: "chat",
    who: "everyone",
  }),
  env: define({
    args: {},
    summary: "shows the server environment",
    description: "the environment the server runs in: `Environment: LOCAL`",
    section: "chat",
    who: "everyone",
  }),
  ping: define({
    args: {},
    summary: "answers pong!",
    description: "`pong!`",
    section: "chat",
    who: "everyone",
  }),
  pm: define({
    args: { to: userName(), text: message("message") },
    summary: "sends a private message",
    description:
      "a private message, to a user in any room: they get `PM <- you: ...`, you get `PM -> them: ...`",
    section: "chat",
    who: "everyone",
    api: { method: "POST", path: "/users/:to/messages", as: "bot", status: 202 },
  }),
  join: define({
    args: { room: roomName() },
    summary: "moves you to a room (created if new)",
    description:
      "moves you to a room, created on first join (1 to 32 letters, digits, `-`, `_`; case-insensitive)",
    section: "chat",
    who: "everyone",
  }),
  leave: define({
    args: { seen: seen() },
    summary: "takes you back to the lobby",
    description: "back to `lobby`",
    section: "chat",
    who: "everyone",
  }),
  rooms: define({
    args: { seen: seen() },
    summary: "lists the rooms",
    description: "every room with its member count",
    section: "chat",
    who: "everyone",
  }),
  me: define({
    args: { text: message("action") },
    summary: "describes what you do",
    description: "an emote: `* Ann waves`",
    section: "chat",
    who: "everyone",
  }),
  history: define({
    args: { count: count("n"), with: conversationWith() },
    summary: "replays the newest messages of your room",
    description:
      "replays up to `n` of the newest messages of your room (default: all kept); v2, token mode: `with` a user, of your private conversation with them",
    section: "chat",
    who: "everyone",
  }),
  edit: define({
    args: { id: messageId(), text: message("message") },
    command: false,
    summary: "changes the text of one of your messages",
    description:
      "v2 only: your message `id`, within `edit_window`, says `text` instead, for everyone and in history",
    section: "chat",
    who: "everyone",
  }),
  delete: define({
    args: { id: messageId(), room: otherRoom() },
    summary: "removes a message: yours within the edit window, anyone's for moderators",
    description: 'removes message `id` of your room (or `room`): see "Taking a message back"',
    section: "chat",
    who: "everyone",
    api: { method: "DELETE", path: "/rooms/:room/messages/:id", as: "moderator", status: 200 },
  }),
  topic: define({
    args: { text: topic() },
    summary: "shows your room's topic; moderators set it",
    description:
      'shows your room\'s topic; moderators set it (`""` clears it); shown on join and in `!rooms`',
    section: "moderation",
    who: (request) => request.text === undefined ? "everyone" : "moderators",
  }),
  op: define({
    args: { password: secret("password") },
    summary: "makes you a moderator, with the operator password",
    description: "open mode: makes you a moderator",
    section: "moderation",
    who: "open",
  }),
  kick: define({
    args: { user: userName(), reason: note("reason") },
    summary: "disconnects a user",
    description:
      "closes the user's socket with **4003**; their room reads `Bob was kicked by Ann: reason`",
    section: "moderation",
    who: "moderators",
    api: { method: "POST", path: "/users/:user/disconnect", as: "moderator", status: 200 },
  }),
  mute: define({
    args: { user: target(), seconds: duration(), reason: note("reason") },
    summary: "silences a user, name:<name> or addr:<address> for 30s, 10m, 2h, 1d, ...",
    description: "the user (or name, or address) may read but not speak or send private messages",
    section: "moderation",
    who: "moderators",
  }),
  unmute: define({
    args: { user: target() },
    summary: "lets a muted user, name or address speak again",
    description: "lifts a mute",
    section: "moderation",
    who: "moderators",
  }),
  ban: define({
    args: { target: target(), seconds: duration(), reason: note("reason"), delete: removeCount() },
    summary: "disconnects and keeps out a user, name:<name> or addr:<address or network>",
    description:
      "removes the user (4003) and refuses them at the upgrade (**403**, with the end and the reason); `delete` (v2, API): their newest N messages go too",
    section: "moderation",
    who: "moderators",
    api: { method: "POST", path: "/bans", as: "moderator", status: 201 },
  }),
  unban: define({
    args: { target: target() },
    summary: "lifts the ban of a user, name or address",
    description: "lifts a ban, with the address a user's ban held",
    section: "moderation",
    who: "moderators",
    api: { method: "DELETE", path: "/bans/:target", as: "moderator", status: 200 },
  }),
  slow: define({
    args: { seconds: seconds(MAX_SLOW_SECONDS) },
    summary: "one message per user every so many seconds here; 0 ends it",
    description:
      "in your room, each user (and each address) may send one message per so many seconds (moderators are exempt); 0: off",
    section: "moderation",
    who: "moderators",
  }),
  typing: define({
    args: {},
    command: false,
    summary: "tells your room you are typing",
    description:
      "v2 only: your room's other members are shown that you are typing, for 6 s or until you speak",
    section: "chat",
    who: "everyone",
  }),
  refresh: define({
    args: { auth: secret("token", "word") },
    summary: "renews your sign-in with a fresh token",
    description: 'token mode: renews your sign-in with a fresh token (see "Identity")',
    section: "chat",
    who: "token",
  }),
} as const;

/** The type of every request. */
export type RequestType = keyof typeof REQUESTS;

/** The request of type `T`, with its arguments. */
export type RequestOf<T extends RequestType> =
  & { readonly type: T }
  & ArgsOf<(typeof REQUESTS)[T]["args"]>;

/** A request that could not be read, with what is needed to say why. */
export type RequestProblem =
  | { readonly code: "usage"; readonly usage: string }
  | { readonly code: "unknown_command"; readonly command: string }
  | { readonly code: "bad_request"; readonly reason: string }
  | { readonly code: "binary_unsupported" };

/**
 * What a client asks of the chat, whatever its road: a `!` command, the v2
 * request of the same type and an API call are the same request. Text comes
 * as the client sent it (bounded); the chat cleans and checks it.
 */
export type ClientRequest =
  | { [T in RequestType]: RequestOf<T> }[RequestType]
  /** A frame that could not be read as a request; the chat answers with the problem. */
  | { readonly type: "invalid"; readonly problem: RequestProblem };

/** The spec of the request of type `type`. */
export function specOf(type: RequestType): RequestSpec<Readonly<Record<string, Arg<unknown>>>> {
  return REQUESTS[type] as RequestSpec<Readonly<Record<string, Arg<unknown>>>>;
}

/** Every request type, in the table's order. */
export const REQUEST_TYPES: readonly RequestType[] = Object.keys(REQUESTS) as RequestType[];

/** Whether `type` names a request. */
export function isRequestType(type: unknown): type is RequestType {
  return typeof type === "string" && Object.hasOwn(REQUESTS, type);
}

/** Who may make `request`. */
export function whoMay(request: Exclude<ClientRequest, { type: "invalid" }>): Who {
  const who = specOf(request.type).who;
  return typeof who === "function" ? who(request) : who;
}
