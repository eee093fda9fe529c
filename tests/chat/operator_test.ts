/**
 * Wrong operator passwords: each session may guess wrong a few times, then
 * waits before each guess, the wait doubling up to a bound; an address
 * holds back every session behind it only past a much larger allowance.
 * Nothing is ever refused for good.
 */

import { assertEquals } from "@std/assert";
import type { ChatEvent } from "../../src/vocabulary/events.ts";
import type { User } from "../../src/chat/user.ts";
import { connect, createTestChatroom, FakeClock, FakeSink, TEST_CHAT_CONFIG } from "../_fakes.ts";

const PASSWORD = "correct horse battery staple";
const WRONG = "not the password at all";
const ADDRESS = "203.0.113.7";
const SECOND = 1000;

const GRANTED = "You are now a moderator.";
const REFUSED = "Wrong operator password.";
const wait = (seconds: number) => `Too many wrong operator passwords: try again in ${seconds} s.`;

function setUp() {
  const clock = new FakeClock();
  const chatroom = createTestChatroom({
    now: clock.now,
    config: {
      ...TEST_CHAT_CONFIG,
      flood: {
        ...TEST_CHAT_CONFIG.flood,
        rate: 100_000,
        burst: 100_000,
        addressRate: 100_000,
        addressBurst: 100_000,
      },
    },
    auth: { tokenMode: false, expiryWarning: 60, operatorPassword: PASSWORD },
  });
  /** A session from `address`, and what `!op` with `password` answers it, by the text or v2 road. */
  const session = (address = ADDRESS) => {
    const sink = new FakeSink();
    const user = connect(chatroom, sink, { address });
    sink.take();
    return { user, sink };
  };
  const op = ({ user, sink }: { user: User; sink: FakeSink }, password: string): string => {
    chatroom.handle(user, { type: "op", password });
    const answers = sink.events.splice(0).filter((event: ChatEvent) =>
      event.type === "error" || event.type === "system"
    );
    sink.own.splice(0);
    assertEquals(answers.length, 1, "one answer");
    const [answer] = answers;
    if (answer.type === "error") assertEquals(answer.code, "forbidden");
    return answer.body;
  };
  return { clock, chatroom, session, op };
}

Deno.test("a session that guesses wrong waits, the wait doubling up to 15 minutes", async (t) => {
  const { clock, chatroom, session, op } = setUp();
  const eve = session();

  await t.step("five wrong guesses are answered at once", () => {
    for (let i = 0; i < 5; i++) assertEquals(op(eve, WRONG), REFUSED);
  });

  await t.step("then even the right password waits 5 s, and is not checked", () => {
    assertEquals(op(eve, PASSWORD), wait(5));
    clock.advance(4 * SECOND);
    assertEquals(op(eve, PASSWORD), wait(1));
    assertEquals(eve.user.roles.size, 0);
  });

  await t.step("each further wrong guess doubles the wait", () => {
    clock.advance(1 * SECOND);
    assertEquals(op(eve, WRONG), REFUSED);
    assertEquals(op(eve, WRONG), wait(10));
    clock.advance(10 * SECOND);
    assertEquals(op(eve, WRONG), REFUSED);
    assertEquals(op(eve, WRONG), wait(20));
  });

  await t.step("up to 15 minutes, never longer", () => {
    let seconds = 20;
    for (let i = 0; i < 10; i++) {
      clock.advance(seconds * SECOND);
      assertEquals(op(eve, WRONG), REFUSED);
      seconds = Math.min(seconds * 2, 900);
    }
    assertEquals(op(eve, WRONG), wait(900));
  });

  await t.step("once the wait is over, the right password makes a moderator", () => {
    clock.advance(900 * SECOND);
    assertEquals(op(eve, PASSWORD), GRANTED);
    assertEquals([...eve.user.roles], ["moderator"]);
  });

  await t.step("an hour without wrong guesses starts a session afresh", () => {
    const mallory = session("198.51.100.9");
    for (let i = 0; i < 5; i++) assertEquals(op(mallory, WRONG), REFUSED);
    clock.advance(3600 * SECOND);
    chatroom.sweepRooms();
    for (let i = 0; i < 5; i++) assertEquals(op(mallory, WRONG), REFUSED);
    assertEquals(op(mallory, WRONG), wait(5));
  });
});

Deno.test("another session's wrong guesses hold a session back only past 50 from its address", async (t) => {
  const { clock, session, op } = setUp();
  const guessers = Array.from({ length: 10 }, () => session());

  await t.step("a session that guessed nothing is not held by another's five", () => {
    for (let i = 0; i < 5; i++) assertEquals(op(guessers[0], WRONG), REFUSED);
    assertEquals(op(guessers[0], PASSWORD), wait(5));
    const bob = session();
    assertEquals(op(bob, PASSWORD), GRANTED);
  });

  await t.step("past 50 wrong guesses from the address, every session there waits", () => {
    for (const guesser of guessers.slice(1)) {
      for (let i = 0; i < 5; i++) assertEquals(op(guesser, WRONG), REFUSED);
    }
    assertEquals(op(session(), PASSWORD), wait(5));
    assertEquals(op(session("203.0.113.8"), PASSWORD), GRANTED);
  });

  await t.step("the address's wait doubles as the session's does, and ends", () => {
    clock.advance(5 * SECOND);
    const fresh = session();
    assertEquals(op(fresh, WRONG), REFUSED);
    assertEquals(op(fresh, PASSWORD), wait(10));
    clock.advance(10 * SECOND);
    assertEquals(op(fresh, PASSWORD), GRANTED);
  });
});
