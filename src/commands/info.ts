import type { Command } from "./types.ts";

/** `!help`: every command with its one-line summary. */
export const help: Command = {
  name: "help",
  usage: "!help",
  summary: "lists the commands",
  run(context) {
    const lines = context.chat.commands.map((command) => `${command.usage} - ${command.summary}`);
    context.reply("help", { commands: lines.join("\n") });
  },
};

/** `!about`: what this server is. */
export const about: Command = {
  name: "about",
  usage: "!about",
  summary: "describes this server",
  run(context) {
    context.reply("about", {});
  },
};

/** `!env`: the environment the server runs in. */
export const env: Command = {
  name: "env",
  usage: "!env",
  summary: "shows the server environment",
  run(context) {
    context.reply("env", { env: context.chat.environment });
  },
};

/** `!ping`: answers `pong!`, to check the connection. */
export const ping: Command = {
  name: "ping",
  usage: "!ping",
  summary: "answers pong!",
  run(context) {
    context.reply("pong", {});
  },
};

/** `!who`: everyone connected. */
export const who: Command = {
  name: "who",
  usage: "!who",
  summary: "lists connected users",
  run(context) {
    const names = context.chat.users().map((user) => user.name);
    context.reply("who", { names: names.join(", ") });
  },
};
