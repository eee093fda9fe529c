/** The README's command tables are the request table's, as `deno task docs` writes them. */

import { assertEquals } from "@std/assert";
import { README, withTables } from "../../scripts/docs.ts";

Deno.test("the README's command tables are derived from the request table", async () => {
  const readme = await Deno.readTextFile(README);
  assertEquals(
    readme.match(/<!-- commands: \w+ -->/g),
    ["<!-- commands: chat -->", "<!-- commands: moderation -->"],
  );
  assertEquals(withTables(readme), readme, "run `deno task docs` to write them again");
});
