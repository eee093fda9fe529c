import type { Command } from "./types.ts";

/** `!join <room>`: moves to a room, creating it on first join. */
export const join: Command = {
  name: "join",
  usage: "!join <room>",
  summary: "moves you to a room (created if new)",
  run(context) {
    if (context.args === "") return context.replyUsage();
    context.chat.join(context.user, context.args);
  },
};

/** `!leave`: back to the lobby. */
export const leave: Command = {
  name: "leave",
  usage: "!leave",
  summary: "takes you back to the lobby",
  run(context) {
    context.chat.leave(context.user);
  },
};

/** `!rooms`: every room with its member count. */
export const rooms: Command = {
  name: "rooms",
  usage: "!rooms",
  summary: "lists the rooms",
  run(context) {
    context.chat.sendRooms(context.user);
  },
};

/** `!who`: who is in your room. */
export const who: Command = {
  name: "who",
  usage: "!who",
  summary: "lists the users in your room",
  run(context) {
    context.chat.sendMembers(context.user);
  },
};

/** `!me <action>`: an emote, shown as `* name action`. */
export const me: Command = {
  name: "me",
  usage: "!me <action>",
  summary: "describes what you do",
  run(context) {
    if (context.args === "") return context.replyUsage();
    context.chat.say(context.user, context.args, true);
  },
};

/** `!history [n]`: replays the newest messages of your room. */
export const history: Command = {
  name: "history",
  usage: "!history [n]",
  summary: "replays the newest messages of your room",
  run(context) {
    if (context.args === "") return context.chat.sendHistory(context.user);
    if (!/^\d{1,6}$/.test(context.args)) return context.replyUsage();
    context.chat.sendHistory(context.user, Number(context.args));
  },
};
