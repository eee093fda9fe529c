/**
 * The catalog of everything users read: one template per message key, with
 * the `$placeholders` each may use. `chat.yaml` supplies the texts (checked
 * against {@linkcode MESSAGE_PLACEHOLDERS} when the config loads); the chat
 * renders them through a {@linkcode Catalog}.
 *
 * @module
 */

/** The placeholders each message template may use. */
export const MESSAGE_PLACEHOLDERS = {
  welcome: ["name"],
  connected: ["name"],
  disconnected: ["name"],
  chat: ["name", "message"],
  renamed: ["old", "new"],
  name_refused: ["name", "reason"],
  who: ["names"],
  env: ["env"],
  pong: [],
  about: [],
  help: ["commands"],
  usage: ["usage"],
  pm_sent: ["to", "message"],
  pm_received: ["from", "message"],
  user_not_found: ["name"],
  unknown_command: ["text"],
  shutdown: [],
  flood_warning: [],
  binary_refused: [],
  internal_error: [],
  bad_request: ["reason"],
  emote: ["name", "action"],
  help_command: ["usage", "summary"],
  rooms: ["rooms"],
  room_entered: ["room", "members"],
  room_joined: ["name", "room"],
  room_left: ["name", "room"],
  room_invalid: ["room"],
  room_limit: [],
  already_in_room: ["room"],
  history_empty: ["room"],
  degraded: [],
  recovered: [],
  not_sent: [],
} as const satisfies Record<string, readonly string[]>;

/** The name of a message template. */
export type MessageKey = keyof typeof MESSAGE_PLACEHOLDERS;
/** The values a template needs, one per placeholder. */
export type MessageValues<K extends MessageKey> = {
  readonly [P in (typeof MESSAGE_PLACEHOLDERS)[K][number]]: string;
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
