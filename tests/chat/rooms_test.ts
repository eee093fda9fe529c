import { assertEquals } from "@std/assert";
import type { MessageEvent } from "../../src/vocabulary/events.ts";
import {
  chatroomWith,
  connect,
  FakeClock,
  FakeSink,
  receive,
  TEST_CHAT_CONFIG,
} from "../_fakes.ts";
import { Room } from "../../src/chat/room.ts";

/** Ann's message number `seq` in the lobby, its text the number. */
function message(seq: number): MessageEvent {
  return {
    type: "message",
    id: String(seq),
    sentAt: 0,
    origin: "USER",
    body: String(seq),
    room: "lobby",
    from: "Ann",
    text: String(seq),
    seq,
    emote: false,
    epoch: "e1",
  };
}

Deno.test("rooms", async (t) => {
  await t.step("everyone starts in the lobby", () => {
    const { users } = chatroomWith(2);
    assertEquals(users.map((user) => user.room?.name), ["lobby", "lobby"]);
  });

  await t.step("!join moves a user, and both rooms hear of it", () => {
    const { chatroom, sinks: [alice, bob, carol], users: [aliceUser, , carolUser] } = chatroomWith(
      3,
    );
    receive(chatroom, carolUser, "!join games");
    for (const sink of [alice, bob, carol]) sink.take();
    receive(chatroom, aliceUser, "!join Games");
    assertEquals(alice.take(), [["SERVER", "You are now in games with: Guest3, Guest1"]]);
    assertEquals(bob.take(), [["SERVER", "Guest1 has left lobby"]]);
    assertEquals(carol.take(), [["SERVER", "Guest1 has joined games"]]);
    assertEquals(aliceUser.room?.name, "games");
  });

  await t.step("messages stay in their room; !pm crosses rooms", () => {
    const { chatroom, sinks: [alice, bob], users: [aliceUser, bobUser] } = chatroomWith(2);
    receive(chatroom, aliceUser, "!join games");
    alice.take();
    bob.take();
    receive(chatroom, bobUser, "lobby only");
    assertEquals(alice.take(), []);
    receive(chatroom, bobUser, "!pm Guest1 psst");
    assertEquals(alice.take(), [["PRIVATE", "PM <- Guest2: psst"]]);
  });

  await t.step("!leave returns to the lobby; there it is refused", () => {
    const { chatroom, sinks: [alice], users: [aliceUser] } = chatroomWith(1);
    receive(chatroom, aliceUser, "!leave");
    assertEquals(alice.take(), [["SERVER", "You are already in lobby"]]);
    receive(chatroom, aliceUser, "!join games");
    alice.take();
    receive(chatroom, aliceUser, "!leave");
    assertEquals(alice.take(), [["SERVER", "You are now in lobby with: Guest1"]]);
    assertEquals(aliceUser.room?.name, "lobby");
  });

  await t.step("invalid room names and a second !join of the same room are refused", () => {
    const { chatroom, sinks: [alice], users: [aliceUser] } = chatroomWith(1);
    receive(chatroom, aliceUser, "!join no spaces");
    receive(chatroom, aliceUser, `!join ${"r".repeat(33)}`);
    receive(chatroom, aliceUser, "!join LOBBY");
    receive(chatroom, aliceUser, "!join");
    const invalid = (room: string) =>
      `"${room}" is not a valid room name: use 1 to 32 letters, digits, "-" and "_"`;
    assertEquals(alice.take(), [
      ["SERVER", invalid("no spaces")],
      ["SERVER", invalid("r".repeat(33))],
      ["SERVER", "You are already in lobby"],
      ["SERVER", "Usage: !join <room>"],
    ]);
  });

  await t.step("!rooms lists rooms with member counts; !who the current room", () => {
    const { chatroom, sinks: [alice], users: [aliceUser, bobUser] } = chatroomWith(3);
    receive(chatroom, bobUser, "!join games");
    receive(chatroom, aliceUser, "!rooms");
    receive(chatroom, aliceUser, "!who");
    assertEquals(alice.take().slice(-2), [
      ["SERVER", "Rooms: lobby (2), games (1)"],
      ["SERVER", "Connected Users: Guest1, Guest3"],
    ]);
  });

  await t.step("!me is an emote in the room", () => {
    const { chatroom, sinks: [alice, bob], users: [aliceUser] } = chatroomWith(2);
    receive(chatroom, aliceUser, "!me waves");
    receive(chatroom, aliceUser, "!me");
    assertEquals(bob.take(), [["USER", "* Guest1 waves"]]);
    assertEquals(alice.take(), [["SELF", "* Guest1 waves"], ["SERVER", "Usage: !me <action>"]]);
  });

  await t.step("!help <command> explains one command", () => {
    const { chatroom, sinks: [alice], users: [aliceUser] } = chatroomWith(1);
    receive(chatroom, aliceUser, "!help join");
    receive(chatroom, aliceUser, "!help !PM");
    receive(chatroom, aliceUser, "!help fly");
    assertEquals(alice.take(), [
      ["SERVER", "!join <room> - moves you to a room (created if new)"],
      ["SERVER", "!pm <user> <message> - sends a private message"],
      ["SERVER", '"!fly" is not a valid command'],
    ]);
  });
});

Deno.test("history", async (t) => {
  await t.step("a newcomer gets the backlog, oldest first, as HISTORY", () => {
    const { chatroom, users: [aliceUser] } = chatroomWith(1);
    receive(chatroom, aliceUser, "one");
    receive(chatroom, aliceUser, "!me two");
    const bob = new FakeSink();
    connect(chatroom, bob);
    assertEquals(bob.take().slice(1), [["HISTORY", "Guest1: one"], ["HISTORY", "* Guest1 two"]]);
  });

  await t.step("each room numbers its own messages and keeps history_size of them", () => {
    const config = { ...TEST_CHAT_CONFIG, historySize: 2 };
    const { chatroom, users: [aliceUser, bobUser] } = chatroomWith(2, { config });
    receive(chatroom, bobUser, "!join games");
    for (const text of ["a", "b", "c"]) receive(chatroom, aliceUser, text);
    receive(chatroom, bobUser, "g");
    assertEquals(chatroom.findRoom("lobby")?.lastSeq, 3);
    assertEquals(chatroom.findRoom("games")?.lastSeq, 1);
    assertEquals(chatroom.findRoom("lobby")?.recent(10).map((message) => message.text), ["b", "c"]);
  });

  await t.step("a room's history stays in order however often it wraps", () => {
    const room = new Room("lobby", { historySize: 3, epoch: "e1" });
    for (let n = 1; n <= 8; n++) room.append(message(n), "e1");
    const seqs = (messages: readonly MessageEvent[]) => messages.map((kept) => kept.seq);
    assertEquals(seqs(room.recent(10)), [6, 7, 8]);
    assertEquals(seqs(room.recent(2)), [7, 8]);
    const quiet = new Room("quiet", { historySize: 0, epoch: "e1" });
    quiet.append(message(1), "e1");
    assertEquals([quiet.lastSeq, quiet.recent(1)], [1, []]);
    // A message delivered again (after a reconnect) is not kept twice.
    assertEquals(quiet.append(message(1), "e1"), false);
    assertEquals(room.append(message(8), "e1"), false);
    assertEquals(seqs(room.recent(10)), [6, 7, 8]);
  });

  await t.step("when someone last spoke is read from the newest kept messages back", () => {
    const room = new Room("lobby", { historySize: 3, epoch: "e1" });
    const said = (seq: number, from: string) => ({ ...message(seq), from, sentAt: seq * 1000 });
    for (const [seq, from] of [[1, "Bob"], [2, "Ann"], [3, "Bob"], [4, "Cy"], [5, "Cy"]] as const) {
      room.append(said(seq, from), "e1");
    }
    // Kept: 3 (Bob), 4 and 5 (Cy); the ring has wrapped.
    assertEquals(room.lastSaidBy((name) => name === "Bob", 0), 3000);
    assertEquals(room.lastSaidBy((name) => name === "Cy", 0), 5000);
    assertEquals(room.lastSaidBy((name) => name === "Bob", 3000), undefined);
    assertEquals(room.lastSaidBy((name) => name === "Ann", 0), undefined);
  });

  await t.step("a backlog is exact in the same epoch, else whole and marked as a gap", () => {
    const room = new Room("lobby", { historySize: 3, epoch: "e1" });
    for (let n = 1; n <= 8; n++) room.append(message(n), "e1");
    const backlog = (epoch: string | undefined, seq: number) => {
      const { messages, gap } = room.backlogAfter(epoch, seq);
      return [messages.map((kept) => kept.seq), gap];
    };
    assertEquals(backlog("e1", 6), [[7, 8], undefined]);
    assertEquals(backlog("e1", 5), [[6, 7, 8], undefined]);
    assertEquals(backlog("e1", 8), [[], undefined]);
    assertEquals(backlog("e1", 4), [[6, 7, 8], "trimmed"]);
    assertEquals(backlog("e0", 6), [[6, 7, 8], "epoch"]);
    assertEquals(backlog("e1", 0), [[6, 7, 8], undefined]);
    // Clients from before epochs: a seq beyond the newest shows a new numbering.
    assertEquals(backlog(undefined, 6), [[7, 8], undefined]);
    assertEquals(backlog(undefined, 99), [[6, 7, 8], "epoch"]);
    // A log joined midway may have had messages before its first.
    const joined = new Room("games", { historySize: 3, epoch: "e9" });
    joined.append(message(40), "e9");
    assertEquals(joined.backlogAfter("e9", 12).gap, "trimmed");
    assertEquals(joined.backlogAfter("e9", 39).gap, undefined);
  });

  await t.step("unread counts come from the kept messages, across the ring", () => {
    const room = new Room("lobby", { historySize: 3, epoch: "e1" });
    assertEquals(room.unreadAfter("e1", 0), 0);
    // Seqs with gaps, as a cluster numbers them.
    for (const seq of [1000, 2000, 2001, 5000, 7000]) room.append(message(seq), "e1");
    const unread = [0, 2000, 2001, 4999, 5000, 7000, 9000].map((seq) =>
      room.unreadAfter("e1", seq)
    );
    assertEquals(unread, [3, 3, 2, 2, 1, 0, 0]);
    assertEquals(room.unreadAfter("e0", 7000), 3, "another epoch: all kept are unread");
  });

  await t.step("!history [n] replays the newest messages", () => {
    const { chatroom, sinks: [alice], users: [aliceUser] } = chatroomWith(1);
    receive(chatroom, aliceUser, "!history");
    for (const text of ["a", "b", "c"]) receive(chatroom, aliceUser, text);
    alice.take();
    receive(chatroom, aliceUser, "!history 2");
    receive(chatroom, aliceUser, "!history lots");
    assertEquals(alice.take(), [
      ["HISTORY", "Guest1: b"],
      ["HISTORY", "Guest1: c"],
      ["SERVER", "Usage: !history [n]"],
    ]);
  });

  await t.step("with nothing said, !history says so", () => {
    const { chatroom, sinks: [alice], users: [aliceUser] } = chatroomWith(1);
    receive(chatroom, aliceUser, "!history");
    assertEquals(alice.take(), [["SERVER", "No messages in lobby yet"]]);
  });
});

Deno.test("idle rooms", async (t) => {
  await t.step("an empty room goes, with its history, after room_idle_ttl", () => {
    const clock = new FakeClock();
    const config = { ...TEST_CHAT_CONFIG, roomIdleTtl: 60 };
    const { chatroom, users: [aliceUser] } = chatroomWith(1, { config, now: clock.now });
    receive(chatroom, aliceUser, "!join games");
    receive(chatroom, aliceUser, "remember me");
    receive(chatroom, aliceUser, "!leave");
    clock.advance(59_000);
    chatroom.sweepRooms();
    assertEquals(chatroom.findRoom("games")?.lastSeq, 1);
    clock.advance(1000);
    chatroom.sweepRooms();
    assertEquals(chatroom.findRoom("games"), undefined);
    assertEquals(chatroom.findRoom("lobby") !== undefined, true);
  });

  await t.step("an empty room nobody spoke in goes after unused_room_ttl", () => {
    const clock = new FakeClock();
    const config = { ...TEST_CHAT_CONFIG, unusedRoomTtl: 60 };
    const { chatroom, users: [aliceUser] } = chatroomWith(1, { config, now: clock.now });
    receive(chatroom, aliceUser, "!join quiet");
    receive(chatroom, aliceUser, "!leave");
    clock.advance(59_000);
    chatroom.sweepRooms();
    assertEquals(chatroom.findRoom("quiet")?.name, "quiet");
    clock.advance(1000);
    chatroom.sweepRooms();
    assertEquals(chatroom.findRoom("quiet"), undefined);
  });

  await t.step("at max_rooms the empty room with the fewest messages makes way", () => {
    const clock = new FakeClock();
    const config = { ...TEST_CHAT_CONFIG, maxRooms: 5, roomCreateBurst: 100 };
    const { chatroom, users: [aliceUser, bobUser] } = chatroomWith(2, { config, now: clock.now });
    receive(chatroom, bobUser, "!join held");
    for (const [room, lines] of [["busy", 3], ["quiet", 1], ["quieter", 1]] as const) {
      receive(chatroom, aliceUser, `!join ${room}`);
      for (let line = 0; line < lines; line++) receive(chatroom, aliceUser, `line ${line}`);
      clock.advance(1000);
    }
    receive(chatroom, aliceUser, "!leave");
    // lobby, held (Bob's), busy, quiet and quieter: of the two least used, the one empty
    // the longest goes.
    receive(chatroom, aliceUser, "!join fresh");
    assertEquals(aliceUser.room?.name, "fresh");
    assertEquals(chatroom.findRoom("quiet"), undefined);
    receive(chatroom, aliceUser, "!join another");
    assertEquals(chatroom.findRoom("quieter"), undefined);
    // An empty room nobody spoke in goes before one people talked in.
    receive(chatroom, aliceUser, "!join third");
    assertEquals(chatroom.findRoom("fresh"), undefined);
    assertEquals(chatroom.findRoom("busy")?.lastSeq, 3);
    assertEquals(chatroom.findRoom("held")?.members.size, 1);
  });

  await t.step("max_rooms bounds how many rooms with members exist", () => {
    const config = { ...TEST_CHAT_CONFIG, maxRooms: 2 };
    const { chatroom, sinks: [alice], users: [aliceUser] } = chatroomWith(1, { config });
    receive(chatroom, aliceUser, "!join one");
    receive(chatroom, aliceUser, "!join two");
    assertEquals(alice.take().at(-1), [
      "SERVER",
      "No more rooms can be created right now: join an existing one.",
    ]);
    assertEquals(aliceUser.room?.name, "one");
  });
});
