/**
 * Reading one config file: its YAML, and the keys flags and variables set
 * in it.
 *
 * @module
 */

import { parse as parseYaml } from "@std/yaml";
import { ConfigError, fail } from "./_errors.ts";

/** The parsed YAML document of the file at `path`; a file that cannot be read or parsed fails, saying why. */
export async function readYamlFile(path: string): Promise<unknown> {
  let text: string;
  try {
    // A folder cannot be read, and a named pipe would wait for a writer forever.
    const info = await Deno.stat(path);
    if (!info.isFile) {
      fail(
        `config file ${path}`,
        "is not a regular file: point --env or CHAT_CONFIG_DIR at a folder of YAML files",
      );
    }
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    if (error instanceof Deno.errors.NotFound) {
      fail(`config file ${path}`, "does not exist: create it or choose another --env");
    }
    if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable) {
      fail(`config file ${path}`, "cannot be read: grant read access to it");
    }
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    fail(`config file ${path}`, `cannot be read (${reason}): check the file`);
  }
  try {
    return parseYaml(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message.split("\n")[0] : String(error);
    return fail(`config file ${path}`, `is not valid YAML: ${detail}`);
  }
}

/** Sets the dotted `key` of a parsed YAML document, making the mappings on the way. */
export function setKey(document: unknown, key: string, value: unknown): unknown {
  const root = isMapping(document) ? { ...document } : {};
  let mapping: Record<string, unknown> = root;
  const names = key.split(".");
  for (const name of names.slice(0, -1)) {
    const inner = mapping[name];
    mapping = mapping[name] = isMapping(inner) ? { ...inner } : {};
  }
  mapping[names[names.length - 1]] = value;
  return root;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
