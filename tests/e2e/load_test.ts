/**
 * Clients of every kind sending at once in two rooms, as in the benchmark,
 * but checked message by message.
 */

import { assertEquals } from "@std/assert";
import { FLOOD_OFF, startTestServer } from "./_client.ts";

const CLIENTS_PER_KIND = 4;
const MESSAGES = 40;
const MARK = "load|";
/** Client i is in room i % 2. */
const ROOMS = ["lobby", "side"];

/** What client `sender` says, in order. */
const burst = (sender: number) =>
  Array.from({ length: MESSAGES }, (_, n) => `${MARK}${sender}|${n}`);

/** One client under test: how it sends a burst, and how it reads the next chat message's text. */
interface LoadClient {
  sendAll(texts: string[]): void;
  nextText(): Promise<string>;
}

Deno.test("under load everyone gets every message of their room once, in one order", async () => {
  const server = startTestServer({
    chat: { flood: FLOOD_OFF },
  });
  try {
    const clients: LoadClient[] = [];
    for (let i = 0; i < CLIENTS_PER_KIND; i++) {
      const { client } = await server.join();
      if (clients.length % 2 === 1) {
        client.send("!join side");
        await client.waitFor((frame) => frame.body.startsWith("You are now in side"), "the join");
      }
      clients.push({
        sendAll: (texts) => texts.forEach((text) => client.send(text)),
        nextText: async () => {
          const frame = await client.waitFor((frame) => frame.body.includes(MARK), "a message");
          return frame.body.slice(frame.body.indexOf(MARK));
        },
      });
    }
    for (const batched of [false, true]) {
      for (let i = 0; i < CLIENTS_PER_KIND; i++) {
        const { client } = await server.joinV2();
        if (clients.length % 2 === 1) {
          client.send(JSON.stringify({ type: "join", room: "side" }));
          await client.waitFor((frame) => frame.type === "members", "the join");
        }
        const say = (text: string) => ({ type: "say", text });
        clients.push({
          sendAll: (texts) =>
            batched
              ? client.send(JSON.stringify(texts.map(say)))
              : texts.forEach((text) => client.send(JSON.stringify(say(text)))),
          nextText: async () =>
            String((await client.waitFor((frame) => frame.type === "message", "a message")).text),
        });
      }
    }

    clients.forEach((client, sender) => client.sendAll(burst(sender)));
    const sentIn = (room: number) =>
      clients.flatMap((_, sender) => sender % 2 === room ? burst(sender) : []);
    const seen = await Promise.all(clients.map(async (client, i) => {
      const texts: string[] = [];
      while (texts.length < sentIn(i % 2).length) texts.push(await client.nextText());
      return texts;
    }));

    for (const room of ROOMS.keys()) {
      const [first, ...others] = seen.filter((_, i) => i % 2 === room);
      // Once each: the messages said in this room, none twice, none from the other room.
      assertEquals([...first].sort(), sentIn(room).sort(), ROOMS[room]);
      // In order: each sender's messages as it sent them, and one order for the whole room.
      clients.forEach((_, sender) => {
        const own = (texts: string[]) =>
          texts.filter((text) => text.startsWith(`${MARK}${sender}|`));
        assertEquals(own(first), own(sentIn(room)));
      });
      for (const texts of others) assertEquals(texts, first);
    }
    // And nothing more: the next message anyone gets is one sent after all that.
    clients[0].sendAll([`${MARK}end`]);
    clients[1].sendAll([`${MARK}end`]);
    for (const client of clients) assertEquals(await client.nextText(), `${MARK}end`);
  } finally {
    await server.close();
  }
});
