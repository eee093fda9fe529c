import { assert, assertEquals, assertMatch } from "@std/assert";
import { generateName, MAX_NAME_LENGTH, nameKey, nameProblem } from "../src/names.ts";
import { ADJECTIVES, ANIMALS } from "../src/words.ts";

Deno.test("word lists", async (t) => {
  await t.step("are long enough and have no duplicates", () => {
    assert(ADJECTIVES.length >= 300, `${ADJECTIVES.length} adjectives`);
    assert(ANIMALS.length >= 150, `${ANIMALS.length} animals`);
    assertEquals(new Set(ADJECTIVES).size, ADJECTIVES.length);
    assertEquals(new Set(ANIMALS).size, ANIMALS.length);
  });

  await t.step("are capitalized ASCII words that always make a valid name", () => {
    for (const word of [...ADJECTIVES, ...ANIMALS]) assertMatch(word, /^[A-Z][a-z]+$/);
    const longest = (words: readonly string[]) => Math.max(...words.map((word) => word.length));
    assert(longest(ADJECTIVES) + longest(ANIMALS) + 4 <= MAX_NAME_LENGTH);
  });
});

Deno.test("generateName", async (t) => {
  await t.step("pairs an adjective with an animal", () => {
    assertEquals(generateName(() => false, () => 0), ADJECTIVES[0] + ANIMALS[0]);
    const name = generateName(() => false);
    assert(ADJECTIVES.some((adjective) => name.startsWith(adjective)), name);
    assert(ANIMALS.some((animal) => name.endsWith(animal)), name);
  });

  await t.step("adds a number when the pair is taken", () => {
    const base = ADJECTIVES[0] + ANIMALS[0];
    const taken = new Set([base, `${base}2`]);
    assertEquals(generateName((name) => taken.has(name), () => 0), `${base}3`);
  });
});

Deno.test("nameKey treats case and compatibility forms as one name", () => {
  assertEquals(nameKey("Alice"), nameKey("alice"));
  assertEquals(nameKey("ＡＬＩＣＥ"), nameKey("alice"));
  assertEquals(nameKey("STRASSE"), nameKey("straße"));
  assert(nameKey("Alice") !== nameKey("Alicia"));
});

const ONLY = 'it may only contain letters, digits, "_", "-" and "."';

Deno.test("nameProblem", () => {
  const cases: [string, string | undefined][] = [
    ["HeartyHeron", undefined],
    ["x".repeat(MAX_NAME_LENGTH), undefined],
    ["", "it is empty"],
    ["x".repeat(MAX_NAME_LENGTH + 1), "it is longer than 32 characters"],
    ["two words", ONLY],
    ["zero\u200bwidth", ONLY],
    ["bell\u0007", ONLY],
    ["rtl\u202eevil", ONLY],
    ["Bob!", ONLY],
    ["\u0301accent", ONLY],
    ["e\u0301", undefined],
    ["Ünïcödé_名前-1.0", undefined],
    ["ＡＬＩＣＥ", undefined],
    ["Admin", "it is reserved"],
    ["ＲＯＯＴ", "it is reserved"],
  ];
  const reserved = new Set(["admin", "root"]);
  for (const [name, problem] of cases) assertEquals(nameProblem(name, reserved), problem, name);
});
