/**
 * The catalog of everything users read: one template per message key, with
 * the `$placeholders` each may use and its shipped text. `chat.yaml` may
 * replace any text (checked against the placeholders when the config loads);
 * the chat renders them through a {@linkcode Catalog}.
 *
 * @module
 */

/**
 * Every message template: the `$placeholders` it may use and the text
 * shipped for it, used when `chat.yaml` leaves the key out.
 */
export const MESSAGE_CATALOG = {
  welcome: {
    placeholders: ["name"],
    text: 'Welcome, $name (hint: type "!help" for help)',
  },
  connected: {
    placeholders: ["name"],
    text: "$name has connected!",
  },
  disconnected: {
    placeholders: ["name"],
    text: "$name has disconnected!",
  },
  chat: {
    placeholders: ["name", "message"],
    text: "$name: $message",
  },
  renamed: {
    placeholders: ["old", "new"],
    text: '"$old" has changed their name to "$new"',
  },
  name_refused: {
    placeholders: ["name", "reason"],
    text: 'Cannot change your name to "$name": $reason',
  },
  who: {
    placeholders: ["names"],
    text: "Connected Users: $names",
  },
  env: {
    placeholders: ["env"],
    text: "Environment: $env",
  },
  pong: {
    placeholders: [],
    text: "pong!",
  },
  about: {
    placeholders: [],
    text:
      "A WebSocket chatroom written in TypeScript for Deno: generated names, private messages and a handful of ! commands.",
  },
  help: {
    placeholders: ["commands"],
    text: "Available commands:\n$commands",
  },
  usage: {
    placeholders: ["usage"],
    text: "Usage: $usage",
  },
  pm_sent: {
    placeholders: ["to", "message"],
    text: "PM -> $to: $message",
  },
  pm_received: {
    placeholders: ["from", "message"],
    text: "PM <- $from: $message",
  },
  user_not_found: {
    placeholders: ["name"],
    text: "!pm error: user $name not found",
  },
  unknown_command: {
    placeholders: ["text"],
    text: '"$text" is not a valid command',
  },
  shutdown: {
    placeholders: [],
    text: "Server is shutting down... goodbye.",
  },
  flood_warning: {
    placeholders: [],
    text: "You are sending messages too fast: slow down, they are being dropped.",
  },
  binary_refused: {
    placeholders: [],
    text: "Binary frames are not supported: send text.",
  },
  internal_error: {
    placeholders: [],
    text: "Sorry, something went wrong while handling your message.",
  },
  bad_request: {
    placeholders: ["reason"],
    text: "Bad request: $reason",
  },
  emote: {
    placeholders: ["name", "action"],
    text: "* $name $action",
  },
  message_edited: {
    placeholders: ["name", "message"],
    text: "$name edited a message: $message",
  },
  message_removed: {
    placeholders: ["name"],
    text: "A message of $name was removed",
  },
  message_removed_by: {
    placeholders: ["name", "by"],
    text: "A message of $name was removed by $by",
  },
  edited_line: {
    placeholders: ["line"],
    text: "$line (edited)",
  },
  removed_line: {
    placeholders: ["name"],
    text: "$name: (message removed)",
  },
  message_not_found: {
    placeholders: ["id", "room"],
    text: "No message $id is kept in $room.",
  },
  message_not_yours: {
    placeholders: ["minutes"],
    text:
      "You can change only your own messages, within $minutes minutes of sending them; moderators can remove others' (a moderator's takes a higher rank).",
  },
  help_command: {
    placeholders: ["usage", "summary"],
    text: "$usage - $summary",
  },
  rooms: {
    placeholders: ["rooms"],
    text: "Rooms: $rooms",
  },
  room_entered: {
    placeholders: ["room", "members"],
    text: "You are now in $room with: $members",
  },
  room_joined: {
    placeholders: ["name", "room"],
    text: "$name has joined $room",
  },
  room_left: {
    placeholders: ["name", "room"],
    text: "$name has left $room",
  },
  room_invalid: {
    placeholders: ["room"],
    text: '"$room" is not a valid room name: use 1 to 32 letters, digits, "-" and "_"',
  },
  room_limit: {
    placeholders: [],
    text: "No more rooms can be created right now: join an existing one.",
  },
  already_in_room: {
    placeholders: ["room"],
    text: "You are already in $room",
  },
  history_empty: {
    placeholders: ["room"],
    text: "No messages in $room yet",
  },
  conversation_empty: {
    placeholders: ["name"],
    text: "No private messages with $name kept",
  },
  degraded: {
    placeholders: [],
    text:
      "The chat is degraded: the link to the other servers is down. Your messages will go out when it is back.",
  },
  recovered: {
    placeholders: [],
    text: "The link to the other servers is back.",
  },
  too_long: {
    placeholders: [],
    text: "Your message was not sent: it is longer than this chat can carry. Send it in parts.",
  },
  not_sent: {
    placeholders: [],
    text:
      "Your message was not sent: the link to the other servers has been down too long. Try again later.",
  },
  name_unavailable: {
    placeholders: ["requested", "reason", "name"],
    text: 'Cannot use the name "$requested": $reason. You are $name.',
  },
  gap_epoch: {
    placeholders: ["room"],
    text: "Messages of $room may be missing: its history started again while you were away.",
  },
  gap_trimmed: {
    placeholders: ["room"],
    text: "Some messages of $room from while you were away are no longer kept.",
  },
  gap_lost: {
    placeholders: ["room"],
    text: "Some messages of $room were lost on their way between the servers.",
  },
  history_unsaved: {
    placeholders: [],
    text:
      "Room history cannot be saved right now: messages still reach everyone, but a restart would lose them.",
  },
  history_saved: {
    placeholders: [],
    text: "Room history is being saved again.",
  },
  flood_closed: {
    placeholders: [],
    text: "Disconnected: you kept sending too fast.",
  },
  room_create_limit: {
    placeholders: [],
    text: "You are creating rooms too fast: join an existing one, or wait a moment.",
  },
  room_create_busy: {
    placeholders: [],
    text: "Too many rooms are being created right now: join an existing one, or wait a moment.",
  },
  room_busy: {
    placeholders: ["room"],
    text: "$room takes no more messages for the moment: yours was not sent. Wait a little.",
  },
  server_busy: {
    placeholders: [],
    text: "The server takes no more messages for the moment: yours was not sent. Wait a little.",
  },
  privates_dropped: {
    placeholders: ["count"],
    text: "$count private messages sent to you while you were away could not be kept.",
  },
  kicked: {
    placeholders: ["name", "by", "reason"],
    text: "$name was kicked by $by: $reason",
  },
  banned: {
    placeholders: ["name", "by", "reason"],
    text: "$name was banned by $by: $reason",
  },
  removed: {
    placeholders: ["by", "reason"],
    text: "You were removed from the chat by $by: $reason",
  },
  banned_until: {
    placeholders: ["until", "reason"],
    text: "You are banned until $until: $reason",
  },
  muted: {
    placeholders: ["duration", "by", "reason"],
    text: "You are muted for $duration by $by: $reason",
  },
  unmuted: {
    placeholders: [],
    text: "You may speak again.",
  },
  still_muted: {
    placeholders: ["duration"],
    text: "You are muted for $duration more: your message was not sent.",
  },
  slow_wait: {
    placeholders: ["room", "seconds"],
    text: "Slow mode in $room: wait $seconds s before your next message.",
  },
  done: {
    placeholders: ["what"],
    text: "Done: $what.",
  },
  topic: {
    placeholders: ["room", "topic"],
    text: "Topic of $room: $topic",
  },
  no_topic: {
    placeholders: ["room"],
    text: "$room has no topic.",
  },
  topic_set: {
    placeholders: ["by", "room", "topic"],
    text: "$by set the topic of $room: $topic",
  },
  topic_cleared: {
    placeholders: ["by", "room"],
    text: "$by cleared the topic of $room.",
  },
  slow_set: {
    placeholders: ["by", "room", "seconds"],
    text: "$by set slow mode in $room: one message every $seconds s per user.",
  },
  slow_off: {
    placeholders: ["by", "room"],
    text: "$by turned slow mode off in $room.",
  },
  op_granted: {
    placeholders: [],
    text: "You are now a moderator.",
  },
  op_refused: {
    placeholders: [],
    text: "Wrong operator password.",
  },
  op_wait: {
    placeholders: ["seconds"],
    text: "Too many wrong operator passwords: try again in $seconds s.",
  },
  op_unavailable: {
    placeholders: [],
    text: "Moderators are not made with !op on this server.",
  },
  forbidden: {
    placeholders: ["command"],
    text: "Only moderators may use !$command.",
  },
  outranked: {
    placeholders: ["name"],
    text: "You may not moderate $name.",
  },
  bot_name_refused: {
    placeholders: ["name", "reason"],
    text: 'Cannot speak as "$name": $reason.',
  },
  no_such_user: {
    placeholders: ["name"],
    text: "No user called $name is here.",
  },
  target_unknown: {
    placeholders: ["target"],
    text:
      "No user called $target is here: write name:$target to hold the name anyway, or addr: and an address or network.",
  },
  target_invalid: {
    placeholders: ["target", "reason"],
    text: '"$target" cannot be held: $reason.',
  },
  not_held: {
    placeholders: ["target", "what"],
    text: "$target is not $what.",
  },
  not_saved: {
    placeholders: [],
    text: "That could not be saved right now: try again.",
  },
  expiry_warning: {
    placeholders: ["seconds"],
    text: "Your sign-in expires in $seconds s: send a fresh token to stay.",
  },
  refreshed: {
    placeholders: [],
    text: "Your sign-in is renewed.",
  },
  unauthorized: {
    placeholders: ["reason"],
    text: "Your token was refused: $reason",
  },
  expired: {
    placeholders: [],
    text: "Your sign-in has expired: connect again with a fresh token.",
  },
  name_lapsed: {
    placeholders: ["name"],
    text:
      "This server lost contact with the rest of the chat for too long to keep the name $name for you: it may be given to someone else now. Connect again in a few seconds.",
  },
  sign_in_later: {
    placeholders: [],
    text:
      "Your account cannot be signed in here yet: another server of this chat holds it and does not answer, or the servers cannot reach each other. Try again in a few seconds.",
  },
  too_many_devices: {
    placeholders: ["max"],
    text:
      "You signed in on another device, and $max at once is the most: this one, the oldest, is closed.",
  },
} as const satisfies Record<string, { placeholders: readonly string[]; text: string }>;

/** The name of a message template. */
export type MessageKey = keyof typeof MESSAGE_CATALOG;
/** The values a template needs, one per placeholder. */
export type MessageValues<K extends MessageKey> = {
  readonly [P in (typeof MESSAGE_CATALOG)[K]["placeholders"][number]]: string;
};
/** Every message template, by key. */
export type Messages = { readonly [K in MessageKey]: string };

/** Renders the templates of one config. */
export interface Catalog {
  /** Fills the template `key`: `$name` takes `values.name`, `$$` is a dollar sign. */
  render<K extends MessageKey>(key: K, values: MessageValues<K>): string;
}

/**
 * Splits a template once into literal text and placeholder names,
 * alternating: `"Hi $name!"` becomes `["Hi ", "name", "!"]`.
 */
function compile(template: string): readonly string[] {
  // split() with a capturing group alternates literal, name, literal, ...
  const parts = template.split(/\$(\$|\w*)/);
  const compiled: string[] = [parts[0]];
  for (let index = 1; index < parts.length; index += 2) {
    // "$$" is a literal dollar sign: fold it into the text around it.
    if (parts[index] === "$") compiled[compiled.length - 1] += "$" + parts[index + 1];
    else compiled.push(parts[index], parts[index + 1]);
  }
  return compiled;
}

/** A catalog over `messages`, each template compiled once, here. */
export function createCatalog(messages: Messages): Catalog {
  const compiled = Object.fromEntries(
    Object.entries(messages).map(([key, template]) => [key, compile(template)]),
  ) as Record<MessageKey, readonly string[]>;
  return {
    render(key, values) {
      const named = values as Readonly<Record<string, string>>;
      const parts = compiled[key];
      let text = parts[0];
      for (let index = 1; index < parts.length; index += 2) {
        text += named[parts[index]] + parts[index + 1];
      }
      return text;
    },
  };
}
