import { assert, assertEquals, assertMatch } from "@std/assert";
import {
  generateName,
  lookAlikeKey,
  MAX_NAME_LENGTH,
  nameKey,
  nameProblem,
  reservedKeys,
} from "../../src/text/names.ts";
import { ADJECTIVES, ANIMALS } from "../../src/text/words.ts";

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
const INVISIBLE = "it holds invisible characters";
const MIXED = "it mixes writing systems";

Deno.test("nameProblem", () => {
  const cases: [string, string | undefined][] = [
    ["HeartyHeron", undefined],
    ["x".repeat(MAX_NAME_LENGTH), undefined],
    ["", "it is empty"],
    ["x".repeat(MAX_NAME_LENGTH + 1), "it is longer than 32 characters"],
    ["two words", ONLY],
    ["zero\u200bwidth", INVISIBLE],
    ["bell\u0007", ONLY],
    ["rtl\u202eevil", INVISIBLE],
    ["Bob!", ONLY],
    ["\u0301accent", "it starts with a combining mark"],
    ["e\u0301", undefined],
    ["Ünïcödé_名前-1.0", undefined],
    ["ＡＬＩＣＥ", undefined],
    ["Admin", "it is reserved"],
    ["ＲＯＯＴ", "it is reserved"],
    ["ADMİN", "it is reserved"],
    ["Аdmin", MIXED],
  ];
  const reserved = new Set(["admin", "root"].map(nameKey));
  for (const [name, problem] of cases) assertEquals(nameProblem(name, reserved), problem, name);
});

Deno.test("invisible and look-alike names are refused or are one name", async (t) => {
  await t.step("invisible characters and fillers are refused", () => {
    const invisible = [
      "Alice\uFE0F", // variation selector 16
      "Alice\uFE00", // variation selector 1
      "Alice\u034F", // combining grapheme joiner
      "Alice\u{E0100}", // variation selector 17
      "Alice\u180B", // Mongolian free variation selector
      "Alice\u3164", // Hangul filler
      "\u3164", // a name of a filler alone
      "\uFFA0", // halfwidth Hangul filler
      "\u3164\u3164",
      "Ali\u200Dce", // zero-width joiner
      "Ali\u200Cce", // zero-width non-joiner
      "Ali\u2060ce", // word joiner
      "Ali\u00ADce", // soft hyphen
      "Alice\u115F", // Hangul choseong filler
      "Alice\u1160", // Hangul jungseong filler
      "Ali\uFEFFce", // byte order mark
      "Alice\u2066", // bidi isolate
      "Alice\u{E0041}", // tag letter
    ];
    for (const name of invisible) assertEquals(nameProblem(name), INVISIBLE, JSON.stringify(name));
  });

  await t.step("names mixing writing systems are refused", () => {
    const mixed = [
      "\u0410lice", // Cyrillic A
      "Ali\u0441e", // Cyrillic s
      "B\u043Eb", // Cyrillic o
      "\u0391lice", // Greek Alpha
      "pay\u0440al", // Cyrillic er
      "lobby\u0660", // Arabic-Indic zero
      "lobby\u06F0", // extended Arabic-Indic zero
      "Alice\u05D0", // Hebrew alef
      "Anna\u0966", // Devanagari zero
    ];
    for (const name of mixed) assertEquals(nameProblem(name), MIXED, JSON.stringify(name));
  });

  await t.step("look-alikes share one key, so the second is taken", () => {
    const alike: [string, string][] = [
      ["Alice", "alice"],
      ["Alice", "ＡＬＩＣＥ"],
      ["Alice", "\u0430l\u0456\u0441\u0435"], // Cyrillic a, i, es and e around a Latin l
      ["admin", "ADMİN"],
      ["admin", "adrnin"], // rn looks like m
      ["lobby", "l\u043Ebby"], // Cyrillic o
      ["lobby", "1obby"], // digit one looks like l
      ["paypal", "\u0440\u0430\u0443\u0440\u0430l"], // all Cyrillic
      ["scope", "\u0455\u0441\u043E\u0440\u0435"], // all Cyrillic
      ["apple", "\u0430\u0440\u0440l\u0435"], // Cyrillic a, er, er and e
      ["ice", "\u0456ce"], // Ukrainian i
      ["Oscar", "0scar"], // zero and O
      ["STRASSE", "straße"],
      ["Zoe", "Z\u043Ee"],
      ["xyz", "\u0445\u0443z"],
      ["cool", "c\u03BF\u03BFl"], // Greek omicrons
    ];
    for (const [name, twin] of alike) assertEquals(nameKey(twin), nameKey(name), twin);
  });

  await t.step("different names stay different", () => {
    const apart: [string, string][] = [
      ["Alice", "Alicia"],
      ["Anna", "Hanna"],
      ["José", "Jose"],
      ["名前", "名字"],
    ];
    for (const [name, other] of apart) assert(nameKey(name) !== nameKey(other), other);
  });
});

Deno.test("a capital I and other look-alikes that case folding hides are caught too", async (t) => {
  /** Whether two names are one: either key is the same. */
  const same = (a: string, b: string) =>
    nameKey(a) === nameKey(b) || lookAlikeKey(a) === lookAlikeKey(b);
  await t.step("they share a key with the name they look like", () => {
    const alike: [string, string][] = [
      ["Alice", "AIice"], // a capital I for the small l
      ["Alice", "A\u0196ice"], // Latin capital iota
      ["Alice", "\u0410\u0406\u0456\u0441\u0435"], // all Cyrillic
      ["ALICE", "\uA4EE\uA4E1\uA4F2\uA4DA\uA4F0"], // Lisu capitals
      ["lobby", "Iobby"],
      ["lobby", "lo\u0184by"], // Latin tone six for the b
      ["Bill", "BiII"],
    ];
    for (const [name, twin] of alike) assert(same(name, twin), `${twin} beside ${name}`);
  });

  await t.step("different names stay different under both keys", () => {
    for (const [a, b] of [["Alice", "Alicia"], ["Ian", "Lan"], ["admin", "adman"]]) {
      assert(!same(a, b), `${a} and ${b}`);
    }
  });

  await t.step("reserved names are reserved in look-alike capitals too", () => {
    const reserved = reservedKeys(["admin"]);
    assertEquals(nameProblem("\uA4EE\uA4D3\uA4DF\uA4F2\uA4E0", reserved), "it is reserved");
    assertEquals(nameProblem("ADMIN", reserved), "it is reserved");
    assertEquals(nameProblem("AdmIn", reserved), "it is reserved");
    assertEquals(nameProblem("Adam", reserved), undefined);
  });

  await t.step("scripts not listed are still one script at a time", () => {
    assertEquals(nameProblem("\uA4EE\u2C80"), MIXED, "Lisu with Coptic");
    assertEquals(nameProblem("\uA4EE\uA4D3"), undefined, "Lisu alone");
  });
});
