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
  /** Flood control and the connect, presence and room-creation limits out of the way, for tests that send fast on purpose. */
  floodOff?: boolean;
}

/** The per-room and per-address limits that `floodOff` also lifts. */
const FAST_CHAT: Record<string, string> = {
  presence_rate: "100000",
  presence_burst: "100000",
  room_create_rate: "100000",
  room_create_burst: "100000",
  server_room_create_rate: "100000",
  server_room_create_burst: "100000",
};

/** A temporary `CHAT_CONFIG_DIR` holding a `test` environment; remove it when done. */
export async function testConfigDir(changes: ConfigChanges = {}): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "chat-config-" });
  await Deno.mkdir(join(dir, "test"));
  let server = await Deno.readTextFile(join(TEST_ENV, "server.yaml"));
  const limits: Record<string, string> = {
    ...(changes.floodOff
      ? { connect_rate: "100000", connect_burst: "100000", max_inbound_bytes_per_s: "1073741824" }
      : {}),
    ...changes.limits,
  };
  for (const [key, value] of Object.entries(limits)) {
    const line = new RegExp(`^  ${key}: .*$`, "m");
    server = line.test(server)
      ? server.replace(line, `  ${key}: ${value}`)
      : server.replace(/^limits:\n/m, `limits:\n  ${key}: ${value}\n`);
  }
  await Deno.writeTextFile(join(dir, "test", "server.yaml"), server + (changes.server ?? ""));
  let chat = await Deno.readTextFile(join(TEST_ENV, "chat.yaml"));
  const set: Record<string, string> = {
    ...(changes.floodOff ? FAST_CHAT : {}),
    ...changes.chat,
  };
  if (changes.floodOff) {
    const lifted = ["address", "room", "server"].map((who) =>
      `  ${who}_rate: 100000\n  ${who}_burst: 100000\n`
    );
    chat = chat.replace(/^flood:\n/m, `flood:\n${lifted.join("")}`)
      .replace(/^ {2}rate: \d+/m, "  rate: 100000").replace(/^ {2}burst: \d+/m, "  burst: 100000");
  }
  for (const [key, value] of Object.entries(set)) {
    const line = new RegExp(`^${key}: .*$`, "m");
    chat = line.test(chat) ? chat.replace(line, `${key}: ${value}`) : `${key}: ${value}\n${chat}`;
  }
  await Deno.writeTextFile(join(dir, "test", "chat.yaml"), chat);
  return dir;
}
