import type { Command } from "./types.ts";

/** `!pm <user> <message>`: a message only the named user sees, wherever they are. */
export const pm: Command = {
  name: "pm",
  usage: "!pm <user> <message>",
  summary: "sends a private message",
  run(context) {
    const match = /^(\S+)\s+(.+)$/su.exec(context.args);
    if (match === null) return context.replyUsage();
    const [, name, message] = match;
    if (!context.chat.sendPrivate(context.user, name, message)) {
      context.fail("user_not_found", "user_not_found", { name });
    }
  },
};
