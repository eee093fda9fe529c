import type { Command } from "./types.ts";

/** `!help [command]`: every command with its summary, or one command's usage. */
export const help: Command = {
  name: "help",
  usage: "!help [command]",
  summary: "lists the commands, or explains one",
  run(context) {
    const { commands } = context.chat;
    if (context.args !== "") {
      const name = context.args.replace(/^!/, "").toLowerCase();
      const command = commands.find((candidate) => candidate.name === name);
      if (command === undefined) {
        return context.fail("unknown_command", "unknown_command", { text: `!${name}` });
      }
      return context.reply("help_command", { usage: command.usage, summary: command.summary });
    }
    const lines = commands.map((command) => `${command.usage} - ${command.summary}`);
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
