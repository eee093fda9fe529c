import { stripWhitespace } from "../names.ts";
import type { Command } from "./types.ts";

/** `!setname <new name>`: changes the user's name; whitespace is removed. */
export const setname: Command = {
  name: "setname",
  usage: "!setname <new name>",
  summary: "changes your name",
  run(context) {
    const name = stripWhitespace(context.args);
    if (name === "") return context.replyUsage();
    const reason = context.chat.rename(context.user, name);
    if (reason !== undefined) context.fail("name_refused", "name_refused", { name, reason });
  },
};
