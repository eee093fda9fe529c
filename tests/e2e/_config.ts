/** Config folders for server processes: the test environment with some settings changed. */

import { fromFileUrl, join } from "@std/path";

const TEST_ENV = fromFileUrl(new URL("../../config/test/", import.meta.url));

/** What differs from the shipped test environment. */
export interface ConfigChanges {
  /** YAML appended to `server.yaml` (whole sections such as `history:`). */
  server?: string;
  /** Keys of `server.yaml`'s `limits` to set, as YAML values. */
  limits?: Record<string, string>;
  /** Top-level keys of `chat.yaml` to set, as YAML values (`history_size: "500"`). */
  chat?: Record<string, string>;
  /** Flood control out of the way, for tests that send fast on purpose. */
  floodOff?: boolean;
}

/** A temporary `CHAT_CONFIG_DIR` holding a `test` environment; remove it when done. */
export async function testConfigDir(changes: ConfigChanges = {}): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "chat-config-" });
  await Deno.mkdir(join(dir, "test"));
  let server = await Deno.readTextFile(join(TEST_ENV, "server.yaml"));
  for (const [key, value] of Object.entries(changes.limits ?? {})) {
    server = server.replace(new RegExp(`^  ${key}: .*$`, "m"), `  ${key}: ${value}`);
  }
  await Deno.writeTextFile(join(dir, "test", "server.yaml"), server + (changes.server ?? ""));
  let chat = await Deno.readTextFile(join(TEST_ENV, "chat.yaml"));
  const set: Record<string, string> = { ...changes.chat };
  if (changes.floodOff) {
    chat = chat.replace(/rate: \d+/, "rate: 100000").replace(/burst: \d+/, "burst: 100000");
  }
  for (const [key, value] of Object.entries(set)) {
    const line = new RegExp(`^${key}: .*$`, "m");
    chat = line.test(chat) ? chat.replace(line, `${key}: ${value}`) : `${key}: ${value}\n${chat}`;
  }
  await Deno.writeTextFile(join(dir, "test", "chat.yaml"), chat);
  return dir;
}
