import { assert, assertEquals, assertMatch } from "@std/assert";
import {
  generateName,
  looksLike,
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
    [
      "Zalgo\u0316\u0317\u0318\u0319\u031C\u031D\u031E",
      "it stacks more than 6 marks on one character",
    ],
    ["a\u0301\u0316".repeat(10), undefined],
    ["\u0F66\u0F92\u0FB2\u0F72\u0F56", undefined], // Tibetan: three marks under one letter
    ["\u0F40\u0F92\u0FB2\u0FB1\u0F71\u0F72", undefined], // Tibetan: a stack of three and two vowels
    ["\u0E01\u0E31\u0E49", undefined], // Thai: two marks
    [
      "e\u0301\u0316\u0317\u0318\u0319\u031C\u031D\u031E",
      "it stacks more than 6 marks on one character",
    ],
    ["Ünïcödé_名前-1.0", undefined],
    ["ＡＬＩＣＥ", undefined],
    ["Admin", "it is reserved"],
    ["ＲＯＯＴ", "it is reserved"],
    ["ADMİN", "it is reserved"],
    ["Аdmin", MIXED],
  ];
  const reserved = reservedKeys(["admin", "root"]);
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

/**
 * Look-alikes of a name held first (left) that must be refused as that name
 * (right): capitals of other scripts, math letters, digits for letters and a
 * capital I for a small l, in whichever case the name was held.
 */
const LOOK_ALIKES: readonly [string, string][] = [
  ["Tom", "\u03A4\u039F\u039C"], // Greek TOM
  ["team", "\u03A4\u0395\u0391\u039C"], // Greek TEAM
  ["Kate", "\u039A\u0391\u03A4\u0395"], // Greek KATE
  ["Zeno", "\u0396\u0395\u039D\u039F"], // Greek ZENO
  ["Emma", "\u0395\u039C\u039C\u0391"], // Greek EMMA
  ["hope", "\u0397\u039F\u03A1\u0395"], // Greek HOPE
  ["Bob", "\u0392\u039F\u0392"], // Greek BOB
  ["Max", "\u039C\u0391\u03A7"], // Greek MAX
  ["Anna", "\u0391\u039D\u039D\u0391"], // Greek ANNA
  ["Tina", "\u03A4\u0399\u039D\u0391"], // Greek TINA
  ["team", "\u0422\u0415\u0410\u041C"], // Cyrillic TEAM
  ["Tom", "\u0422\u041E\u041C"], // Cyrillic TOM
  ["Echo", "\u0415\u0421\u041D\u041E"], // Cyrillic ECHO
  ["Mexico", "\u041C\u0415\u0425\u0406\u0421\u041E"], // Cyrillic MEXICO
  ["Kate", "\u041A\u0410\u0422\u0415"], // Cyrillic KATE
  ["Boss", "\u0412\u041E\u0405\u0405"], // Cyrillic BOSS
  ["Hope", "\u041D\u041E\u0420\u0415"], // Cyrillic HOPE
  ["Max", "\u041C\u0410\u0425"], // Cyrillic MAX
  ["Joe", "\u0408\u041E\u0415"], // Cyrillic JOE
  ["Taco", "\u0422\u0410\u0421\u041E"], // Cyrillic TACO
  ["scope", "\u0455\u0441\u043E\u0440\u0435"], // Cyrillic, small
  ["xoxo", "\u0445\u043E\u0445\u043E"], // Cyrillic, small
  ["Team", "\u13A2\u13AC\u13AA\u13B7"], // Cherokee TEAM
  ["Dave", "\u13A0\u13AA\u13D9\u13AC"], // Cherokee DAVE
  ["Hawk", "\u13BB\u13AA\u13B3\u13E6"], // Cherokee HAWK
  ["Sam", "\u13DA\u13AA\u13B7"], // Cherokee SAM
  ["Jake", "\u13AB\u13AA\u13E6\u13AC"], // Cherokee JAKE
  ["Gary", "\u13C0\u13AA\u13A1\u13A9"], // Cherokee GARY
  ["Pat", "\u13E2\u13AA\u13A2"], // Cherokee PAT
  ["Bess", "\u13F4\u13AC\u13DA\u13DA"], // Cherokee BESS
  ["Tom", "\uA4D4\uA4F3\uA4DF"], // Lisu TOM
  ["Bob", "\uA4D0\uA4F3\uA4D0"], // Lisu BOB
  ["Fred", "\uA4DD\uA4E3\uA4F0\uA4D3"], // Lisu FRED
  ["Kevin", "\uA4D7\uA4F0\uA4E6\uA4F2\uA4E0"], // Lisu KEVIN
  ["Sally", "\uA4E2\uA4EE\uA4E1\uA4E1\uA4EC"], // Lisu SALLY
  ["Wendy", "\uA4EA\uA4F0\uA4E0\uA4D3\uA4EC"], // Lisu WENDY
  ["Punk", "\uA4D1\uA4F4\uA4E0\uA4D7"], // Lisu PUNK
  ["Zorro", "\uA4DC\uA4F3\uA4E3\uA4E3\uA4F3"], // Lisu ZORRO
  ["ALICE", "\uA4EE\uA4E1\uA4F2\uA4DA\uA4F0"], // Lisu ALICE
  ["Tom", "\u{1D413}\u{1D428}\u{1D426}"], // math bold
  ["alice", "\u{1D504}\u{1D529}\u{1D526}\u{1D520}\u{1D522}"], // math fraktur
  ["Alice", "\u{1D670}\u{1D695}\u{1D692}\u{1D68C}\u{1D68E}"], // math monospace
  ["lobby", "\u{1D7CF}\u{1D428}\u{1D41B}\u{1D41B}\u{1D432}"], // math bold 1 and letters
  ["Tom", "\uFF34\uFF4F\uFF4D"], // fullwidth
  ["lobby", "1obby"], // digit one for a small l
  ["lobby", "Iobby"], // capital I for a small l
  ["Bill", "Bi11"],
  ["Bill", "BiII"],
  ["Alice", "A1ice"],
  ["Ollie", "0llie"], // zero for O
  ["Oscar", "0SCAR"],
  ["Leo", "LE0"],
  ["Tom", "T0M"],
  ["Tom", "t0m"],
  ["Ian", "lan"],
  ["ian", "lan"], // ian is also Ian (one name in any case), which looks like lan
  ["Alice", "ALlCE"], // small l for the capital I of ALICE
  ["alice", "AIice"], // capital I for the small l of Alice
  ["lily", "LlLY"],
  ["Lily", "LiIy"],
  ["Alice", "A\u0196ice"], // Latin capital iota
  ["Alice", "\u0410\u0406\u0456\u0441\u0435"], // all Cyrillic
  ["lobby", "lo\u0184by"], // Latin tone six for the b
  ["admin", "adrnin"], // rn looks like m
  ["STRASSE", "stra\u00DFe"],
  // Letters whose NFKC form hides what they look like, and one the table reads as an i.
  ["Cat", "\u03F9\u0391\u03A4"], // Greek lunate capital sigma, drawn as a C
  ["coco", "\u03F2\u03BF\u03F2\u03BF"], // Greek lunate sigma, drawn as a c
  ["Coke", "\u03F9\u039F\u039A\u0395"],
  ["Jeff", "Je\u017F\u017F"], // Latin long s, drawn as an f
  ["fun", "\u017Fun"],
  ["Ella", "\u0415\u04CF\u04CF\u0430"], // Cyrillic palochka, drawn as an l
  ["Lola", "\u04CF\u043E\u04CF\u0430"],
  ["lobby", "\u04CF\u043E\u042C\u042C\u0443"], // Cyrillic palochka, o, soft signs, u
];

Deno.test("look-alikes in other scripts, cases and digits are one name", async (t) => {
  await t.step(`${LOOK_ALIKES.length} look-alikes each collide with the name they imitate`, () => {
    for (const [name, twin] of LOOK_ALIKES) {
      assert(looksLike(twin, name), `${twin} beside ${name}`);
      assert(looksLike(name, twin), `${name} beside ${twin}`);
      assertEquals(nameProblem(twin), undefined, `${twin} is a valid name by itself`);
    }
  });

  await t.step("different names stay different", () => {
    const apart = [
      ["Alice", "Alicia"],
      ["Ian", "Lan"],
      ["admin", "adman"],
      ["Tom", "Tim"],
      ["Ali", "All"],
      ["Bill", "Biii"],
      ["Anna", "Hanna"],
      ["Jos\u00E9", "Jose"],
      ["Max", "Mack"],
      ["\u540D\u524D", "\u540D\u5B57"],
    ];
    for (const [a, b] of apart) assert(!looksLike(a, b), `${a} and ${b}`);
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
