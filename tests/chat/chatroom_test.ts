import { assertEquals, assertStrictEquals } from "@std/assert";
import type { PublishOutcome } from "../../src/broker/types.ts";
import { cleanText, truncateText } from "../../src/text/sanitize.ts";
import { COMMANDS } from "../../src/vocabulary/commands.ts";
import type { Origin } from "../../src/vocabulary/events.ts";
import { createMetrics } from "../../src/metrics.ts";
import { decodeV2Frame } from "../../src/protocol/v2.ts";
import {
  brokerPublishing,
  chatroomWith,
  connect,
  createTestChatroom,
  FakeClock,
  FakeSink,
  NOW,
  receive,
  TEST_CHAT_CONFIG,
} from "../_fakes.ts";

const WELCOME_HINT = '(hint: type "!help" for help)';

Deno.test("connect", async (t) => {
  await t.step("welcomes the newcomer and tells everyone else", () => {
    const chatroom = createTestChatroom();
    const first = new FakeSink();
    const second = new FakeSink();
    connect(chatroom, first);
    assertEquals(first.take(), [["SERVER", `Welcome, Guest1 ${WELCOME_HINT}`]]);
    connect(chatroom, second);
    assertEquals(second.take(), [["SERVER", `Welcome, Guest2 ${WELCOME_HINT}`]]);
    assertEquals(first.take(), [["SERVER", "Guest2 has connected!"]]);
    assertEquals(chatroom.size, 2);
  });

  await t.step("stamps events with the clock", () => {
    const chatroom = createTestChatroom();
    const sink = new FakeSink();
    connect(chatroom, sink);
    assertEquals(sink.events[0].sentAt, NOW);
  });

  await t.step("uses a requested name when it is valid and free", () => {
    const chatroom = createTestChatroom();
    const sink = new FakeSink();
    assertEquals(connect(chatroom, sink, { name: "Alice" }).name, "Alice");
    assertEquals(sink.take(), [["SERVER", `Welcome, Alice ${WELCOME_HINT}`]]);
  });

  await t.step("generates a name when the requested one is invalid or taken", () => {
    const chatroom = createTestChatroom();
    connect(chatroom, new FakeSink(), { name: "Alice" });
    for (const name of ["alice", "ＡＬＩＣＥ", "", "two words", "x".repeat(33), "a\u200bb"]) {
      assertEquals(
        connect(chatroom, new FakeSink(), { name }).name.startsWith("Guest"),
        true,
        name,
      );
    }
  });
});

Deno.test("chat messages", async (t) => {
  await t.step("reach everyone else as USER and the sender as SELF", () => {
    const { chatroom, sinks: [alice, bob, carol], users: [aliceUser] } = chatroomWith(3);
    receive(chatroom, aliceUser, "hello there");
    assertEquals(alice.take(), [["SELF", "Guest1: hello there"]]);
    assertEquals(bob.take(), [["USER", "Guest1: hello there"]]);
    assertEquals(carol.take(), [["USER", "Guest1: hello there"]]);
  });

  await t.step("share one event object between recipients", () => {
    const { chatroom, sinks: [, bob, carol], users: [aliceUser] } = chatroomWith(3);
    receive(chatroom, aliceUser, "hi");
    assertStrictEquals(bob.events[0], carol.events[0]);
  });

  await t.step("are cut to max_message_len code points", () => {
    const config = { ...TEST_CHAT_CONFIG, maxMessageLen: 3 };
    const { chatroom, sinks: [, bob], users: [aliceUser] } = chatroomWith(2, { config });
    receive(chatroom, aliceUser, "abcdef");
    receive(chatroom, aliceUser, "😀😀😀😀");
    assertEquals(bob.take(), [["USER", "Guest1: abc"], ["USER", "Guest1: 😀😀😀"]]);
  });

  await t.step("from a user who left are ignored", () => {
    const { chatroom, sinks: [, bob], users: [aliceUser] } = chatroomWith(2);
    chatroom.disconnect(aliceUser);
    bob.take();
    receive(chatroom, aliceUser, "ghost");
    assertEquals(bob.take(), []);
  });
});

Deno.test("truncateText never splits a surrogate pair", () => {
  assertEquals(truncateText("a😀b", 2), "a😀");
  assertEquals(truncateText("😀😀", 1), "😀");
  assertEquals(truncateText("short", 10), "short");
  assertEquals(truncateText("x".repeat(1001), 1000).length, 1000);
});

Deno.test("commands", async (t) => {
  await t.step("!help lists every command with its summary", () => {
    const { chatroom, sinks: [alice], users: [aliceUser] } = chatroomWith(1);
    receive(chatroom, aliceUser, "!help");
    const lines = COMMANDS.filter((command) => command.who === "everyone" || command.who === "open")
      .map((command) => `${command.usage} - ${command.summary}`);
    assertEquals(alice.take(), [["SERVER", `Available commands:\n${lines.join("\n")}`]]);
    assertEquals(COMMANDS.map((command) => command.name), [
      "help",
      "about",
      "setname",
      "who",
      "env",
      "ping",
      "pm",
      "join",
      "leave",
      "rooms",
      "me",
      "history",
      "delete",
      "topic",
      "op",
      "kick",
      "mute",
      "unmute",
      "ban",
      "unban",
      "slow",
      "refresh",
    ]);
  });

  await t.step("!about, !env and !ping answer only the caller", () => {
    const { chatroom, sinks: [alice, bob], users: [aliceUser] } = chatroomWith(2);
    receive(chatroom, aliceUser, "!about");
    receive(chatroom, aliceUser, "!env");
    receive(chatroom, aliceUser, "!ping");
    assertEquals(alice.take(), [
      ["SERVER", TEST_CHAT_CONFIG.messages.about],
      ["SERVER", "Environment: TEST"],
      ["SERVER", "pong!"],
    ]);
    assertEquals(bob.take(), []);
  });

  await t.step("names are case-insensitive", () => {
    const { chatroom, sinks: [alice], users: [aliceUser] } = chatroomWith(1);
    receive(chatroom, aliceUser, "!PiNg");
    assertEquals(alice.take(), [["SERVER", "pong!"]]);
  });

  await t.step("!who lists users in arrival order", () => {
    const { chatroom, sinks: [alice], users: [aliceUser] } = chatroomWith(3);
    receive(chatroom, aliceUser, "!who");
    assertEquals(alice.take(), [["SERVER", "Connected Users: Guest1, Guest2, Guest3"]]);
  });

  await t.step("!setname removes whitespace and tells everyone", () => {
    const { chatroom, sinks: [alice, bob], users: [aliceUser] } = chatroomWith(2);
    receive(chatroom, aliceUser, "!setname  Big \t Bird ");
    const notice: [string, string] = ["SERVER", '"Guest1" has changed their name to "BigBird"'];
    assertEquals(alice.take(), [notice]);
    assertEquals(bob.take(), [notice]);
    assertEquals(aliceUser.name, "BigBird");
    assertEquals(chatroom.findUser("bigbird"), aliceUser);
    assertEquals(chatroom.findUser("Guest1"), undefined);
  });

  await t.step("!setname without a name answers with its usage", () => {
    const { chatroom, sinks: [alice], users: [aliceUser] } = chatroomWith(1);
    receive(chatroom, aliceUser, "!setname");
    receive(chatroom, aliceUser, "!setname    ");
    assertEquals(alice.take(), [
      ["SERVER", "Usage: !setname <new name>"],
      ["SERVER", "Usage: !setname <new name>"],
    ]);
  });

  await t.step("!setname refuses a name someone else holds", () => {
    const { chatroom, sinks: [alice, bob], users: [aliceUser] } = chatroomWith(2);
    receive(chatroom, aliceUser, "!setname guest2");
    assertEquals(alice.take(), [["SERVER", 'Cannot change your name to "guest2": it is taken']]);
    assertEquals(bob.take(), []);
    assertEquals(aliceUser.name, "Guest1");
  });

  await t.step("!setname may change the case of one's own name", () => {
    const { chatroom, sinks: [alice], users: [aliceUser] } = chatroomWith(1);
    receive(chatroom, aliceUser, "!setname GUEST1");
    assertEquals(alice.take(), [["SERVER", '"Guest1" has changed their name to "GUEST1"']]);
  });

  await t.step("!pm reaches only the target, with an echo to the sender", () => {
    const { chatroom, sinks: [alice, bob, carol], users: [aliceUser] } = chatroomWith(3);
    receive(chatroom, aliceUser, "!pm guest2 see  you later");
    assertEquals(bob.take(), [["PRIVATE", "PM <- Guest1: see  you later"]]);
    assertEquals(alice.take(), [["PRIVATE", "PM -> Guest2: see  you later"]]);
    assertEquals(carol.take(), []);
  });

  await t.step("!pm with missing parts answers with its usage", () => {
    const { chatroom, sinks: [alice, bob], users: [aliceUser] } = chatroomWith(2);
    receive(chatroom, aliceUser, "!pm");
    receive(chatroom, aliceUser, "!pm Guest2");
    receive(chatroom, aliceUser, "!pm Guest2    ");
    const usage: [string, string] = ["SERVER", "Usage: !pm <user> <message>"];
    assertEquals(alice.take(), [usage, usage, usage]);
    assertEquals(bob.take(), []);
  });

  await t.step("!pm to an unknown user says so", () => {
    const { chatroom, sinks: [alice], users: [aliceUser] } = chatroomWith(1);
    receive(chatroom, aliceUser, "!pm Nobody hi");
    assertEquals(alice.take(), [["SERVER", "!pm error: user Nobody not found"]]);
  });

  await t.step("an unknown command is named in the reply", () => {
    const { chatroom, sinks: [alice, bob], users: [aliceUser] } = chatroomWith(2);
    receive(chatroom, aliceUser, "!dance wildly");
    receive(chatroom, aliceUser, "!");
    assertEquals(alice.take(), [
      ["SERVER", '"!dance wildly" is not a valid command'],
      ["SERVER", '"!" is not a valid command'],
    ]);
    assertEquals(bob.take(), []);
  });
});

Deno.test("disconnect tells the others once", () => {
  const { chatroom, sinks: [alice, bob], users: [aliceUser] } = chatroomWith(2);
  chatroom.disconnect(aliceUser);
  chatroom.disconnect(aliceUser);
  assertEquals(bob.take(), [["SERVER", "Guest1 has disconnected!"]]);
  assertEquals(alice.take(), []);
  assertEquals(chatroom.size, 1);
  assertEquals(chatroom.findUser("Guest1"), undefined);
});

Deno.test("shutdown says goodbye and closes every connection with 1001", () => {
  const { chatroom, sinks } = chatroomWith(2);
  chatroom.shutdown();
  for (const sink of sinks) {
    assertEquals(sink.take(), [["SERVER", "Server is shutting down... goodbye."]]);
    assertEquals(sink.closed, "shutdown");
  }
  assertEquals(chatroom.size, 0);
});

Deno.test("cleanText removes control and format characters but keeps tabs", () => {
  assertEquals(cleanText("a\u0000b\tc\nd\u202ee\u200bf\ufeff"), "ab\tcdef");
  assertEquals(cleanText("lone \ud800 high and \udc00 low"), "lone \ufffd high and \ufffd low");
  assertEquals(cleanText("emoji 😀 and ünïcödé stay"), "emoji 😀 and ünïcödé stay");
});

Deno.test("an error while handling a frame is answered to its sender only", () => {
  const metrics = createMetrics();
  const { chatroom, sinks: [alice, bob], users: [aliceUser] } = chatroomWith(2, {
    broker: brokerPublishing((note, next) => {
      if (note.kind === "message" && note.text === "boom") throw new Error("boom");
      return next(note);
    }),
    metrics,
  });
  receive(chatroom, aliceUser, "boom");
  assertEquals(alice.take(), [
    ["SERVER", "Sorry, something went wrong while handling your message."],
  ]);
  assertEquals(bob.take(), []);
  assertEquals(metrics.errors.get(), 1);
  receive(chatroom, aliceUser, "still here");
  assertEquals(bob.take(), [["USER", "Guest1: still here"]]);
});

Deno.test("flood control follows the clock", async (t) => {
  const flood = {
    ...TEST_CHAT_CONFIG.flood,
    rate: 1,
    burst: 2,
    disconnectAfter: 5,
    addressRate: 1,
    addressBurst: 2,
  };
  const config = { ...TEST_CHAT_CONFIG, flood };
  const warning = TEST_CHAT_CONFIG.messages.flood_warning;

  await t.step("warns once, drops, and lets messages through as tokens return", () => {
    const clock = new FakeClock();
    const { chatroom, sinks: [alice, bob], users: [aliceUser] } = chatroomWith(2, {
      config,
      now: clock.now,
    });
    for (const text of ["a", "b", "c", "d", "!ping"]) receive(chatroom, aliceUser, text);
    assertEquals(alice.take(), [
      ["SELF", "Guest1: a"],
      ["SELF", "Guest1: b"],
      ["SERVER", warning],
    ]);
    assertEquals(bob.take(), [["USER", "Guest1: a"], ["USER", "Guest1: b"]]);
    clock.advance(1000);
    receive(chatroom, aliceUser, "e");
    assertEquals(bob.take(), [["USER", "Guest1: e"]]);
  });

  await t.step("closes with 1008 after disconnect_after seconds of flooding", () => {
    const clock = new FakeClock();
    const { chatroom, sinks: [alice, bob], users: [aliceUser] } = chatroomWith(2, {
      config,
      now: clock.now,
    });
    for (let second = 0; second < 5; second++) {
      for (let i = 0; i < 3; i++) receive(chatroom, aliceUser, "spam");
      clock.advance(1000);
    }
    assertEquals(alice.closed, undefined);
    receive(chatroom, aliceUser, "spam");
    receive(chatroom, aliceUser, "spam");
    assertEquals(alice.closed, "flood");
    assertEquals(bob.take().at(-1), ["SERVER", "Guest1 has disconnected!"]);
    assertEquals(chatroom.size, 1);
  });
});

Deno.test("binary frames get an error reply", () => {
  const { chatroom, sinks: [alice, bob], users: [aliceUser] } = chatroomWith(2);
  chatroom.handle(aliceUser, { type: "invalid", problem: { code: "binary_unsupported" } });
  assertEquals(alice.take(), [["SERVER", "Binary frames are not supported: send text."]]);
  assertEquals(bob.take(), []);
});

Deno.test("presence notices stop above presence_notice_max_members", () => {
  const config = { ...TEST_CHAT_CONFIG, presenceNoticeMaxMembers: 2 };
  const { chatroom, sinks: [alice] } = chatroomWith(2, { config });
  const carol = connect(chatroom, new FakeSink());
  chatroom.disconnect(carol);
  assertEquals(alice.take(), []);
});

Deno.test("a message the broker cannot queue is refused to its sender, saying why", () => {
  const refusals: [PublishOutcome, string][] = [
    [
      "busy",
      "Your message was not sent: the link to the other servers has been down too long. Try again later.",
    ],
    [
      "too_large",
      "Your message was not sent: it is longer than this chat can carry. Send it in parts.",
    ],
  ];
  for (const [outcome, text] of refusals) {
    const { chatroom, sinks: [alice, bob], users: [aliceUser] } = chatroomWith(2, {
      broker: brokerPublishing((note, next) => note.kind === "message" ? outcome : next(note)),
    });
    receive(chatroom, aliceUser, "lost in the outage");
    assertEquals(alice.take(), [["SERVER", text]]);
    assertEquals(bob.take(), []);
  }
});

Deno.test("a ! command and its v2 request take one road and get one answer", async (t) => {
  /** What a user is sent for one text frame, and for one v2 frame. */
  const answers = (text: string, v2: Record<string, unknown>) => {
    const viaText = chatroomWith(2);
    receive(viaText.chatroom, viaText.users[0], "one");
    receive(viaText.chatroom, viaText.users[0], "two");
    viaText.sinks[0].take();
    receive(viaText.chatroom, viaText.users[0], text);
    const viaV2 = chatroomWith(2);
    receive(viaV2.chatroom, viaV2.users[0], "one");
    receive(viaV2.chatroom, viaV2.users[0], "two");
    viaV2.sinks[0].take();
    for (const input of decodeV2Frame(JSON.stringify(v2))) {
      if (input.kind === "request") viaV2.chatroom.handle(viaV2.users[0], input.request);
    }
    return [viaText.sinks[0].take(), viaV2.sinks[0].take()];
  };
  const cases: [string, string, Record<string, unknown>, [Origin, string][]][] = [
    ["an empty emote is a usage error", "!me", { type: "me", text: " \u200b " }, [
      ["SERVER", "Usage: !me <action>"],
    ]],
    ["a private message with no text is a usage error", "!pm Guest2", {
      type: "pm",
      to: "Guest2",
      text: "",
    }, [["SERVER", "Usage: !pm <user> <message>"]]],
    ["a private message with no target is a usage error", "!pm", { type: "pm", to: "", text: "" }, [
      ["SERVER", "Usage: !pm <user> <message>"],
    ]],
    ["setname removes whitespace", "!setname  Big \t Bird ", {
      type: "setname",
      name: " Big \t Bird ",
    }, [["SERVER", '"Guest1" has changed their name to "BigBird"']]],
    ["history takes any whole number", "!history 12345678", { type: "history", count: 12345678 }, [
      ["HISTORY", "Guest1: one"],
      ["HISTORY", "Guest1: two"],
    ]],
    ["join with no room is a usage error", "!join", { type: "join", room: " " }, [
      ["SERVER", "Usage: !join <room>"],
    ]],
    ["ping, about and env", "!ping", { type: "ping" }, [["SERVER", "pong!"]]],
    ["help about one command", "!help pm", { type: "help", command: "!PM" }, [
      ["SERVER", "!pm <user> <message> - sends a private message"],
    ]],
  ];
  for (const [what, text, v2, expected] of cases) {
    await t.step(what, () => {
      const [viaText, viaV2] = answers(text, v2);
      assertEquals(viaText, expected, "text protocol");
      assertEquals(viaV2, expected, "v2");
    });
  }
});
