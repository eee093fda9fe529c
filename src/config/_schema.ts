/**
 * A small declarative schema for config files: each field knows how to read
 * one YAML value, what it expects (for error messages) and its default. A
 * failing field throws {@linkcode SchemaError} with the dotted key; the loader
 * adds the file name.
 *
 * @module
 */

/** A value in a config file that does not fit its field. */
export class SchemaError extends Error {
  readonly key: string;
  readonly problem: string;

  constructor(key: string, problem: string) {
    super(`"${key}" ${problem}`);
    this.name = "SchemaError";
    this.key = key;
    this.problem = problem;
  }
}

/** Reads one value of a config file. */
export interface Field<T> {
  /** The value used when the key is absent; `undefined` makes the key required. */
  readonly fallback: T | undefined;
  /** Returns the value read from `raw`, or throws {@linkcode SchemaError}. */
  read(raw: unknown, key: string): T;
}

/** The type a field produces. */
export type Infer<F> = F extends Field<infer T> ? T : never;

/** Shows a config value the way it was written, for error messages. */
export function showValue(raw: unknown): string {
  if (typeof raw === "string") return JSON.stringify(raw);
  if (raw === null) return "empty";
  if (Array.isArray(raw)) return "a list";
  if (typeof raw === "object") return "a mapping";
  return String(raw);
}

function mismatch(key: string, expected: string, raw: unknown): SchemaError {
  return new SchemaError(key, `must be ${expected}: current value is ${showValue(raw)}`);
}

/** A string; `nonEmpty` refuses "". */
export function string(
  fallback?: string,
  options: { nonEmpty?: boolean } = {},
): Field<string> {
  const { nonEmpty = false } = options;
  const expected = nonEmpty ? "a non-empty string" : "a string";
  return {
    fallback,
    read(raw, key) {
      if (typeof raw !== "string" || (nonEmpty && raw === "")) throw mismatch(key, expected, raw);
      return raw;
    },
  };
}

/** A number within `[min, max]`; `integer` refuses fractions. */
export function number(
  fallback: number | undefined,
  options: { min: number; max: number; integer?: boolean },
): Field<number> {
  const { min, max, integer = false } = options;
  const expected = `${integer ? "an integer" : "a number"} from ${min} to ${max}`;
  return {
    fallback,
    read(raw, key) {
      const fits = typeof raw === "number" && Number.isFinite(raw) && raw >= min && raw <= max &&
        (!integer || Number.isInteger(raw));
      if (!fits) throw mismatch(key, expected, raw);
      return raw;
    },
  };
}

/** An integer within `[min, max]`. */
export function integer(
  fallback: number | undefined,
  options: { min: number; max: number },
): Field<number> {
  return number(fallback, { ...options, integer: true });
}

/** One of a fixed set of strings. */
export function oneOf<const T extends string>(
  choices: readonly T[],
  fallback?: NoInfer<T>,
): Field<T> {
  const expected = `one of ${choices.join(", ")}`;
  return {
    fallback,
    read(raw, key) {
      if (!choices.includes(raw as T)) throw mismatch(key, expected, raw);
      return raw as T;
    },
  };
}

/** What a {@linkcode stringList}'s items must be, besides strings. */
export interface StringListOptions {
  /** Refuses an empty list. */
  nonEmpty?: boolean;
  /** A pattern every item must match, and how to describe such items. */
  item?: { readonly pattern: RegExp; readonly expected: string };
}

/** A list of strings. */
export function stringList(
  fallback?: readonly string[],
  options: StringListOptions = {},
): Field<readonly string[]> {
  const { nonEmpty = false, item } = options;
  return {
    fallback,
    read(raw, key) {
      if (!Array.isArray(raw) || raw.some((value) => typeof value !== "string")) {
        throw mismatch(key, "a list of strings", raw);
      }
      if (nonEmpty && raw.length === 0) {
        throw new SchemaError(
          key,
          `must list at least one item${item ? `: ${item.expected}` : ""}`,
        );
      }
      const bad = item && raw.find((value) => !item.pattern.test(value));
      if (item && bad !== undefined) {
        throw new SchemaError(
          key,
          `must hold ${item.expected}: current value is ${showValue(bad)}`,
        );
      }
      return raw as string[];
    },
  };
}

/**
 * A message template: text with `$name` placeholders (`$$` for a literal
 * dollar sign). Only the listed placeholders may appear, so a typo is caught
 * when the server starts instead of showing up in a chat message.
 */
export function template(placeholders: readonly string[], fallback?: string): Field<string> {
  const allowed = placeholders.length === 0
    ? "none are allowed here"
    : `allowed are ${placeholders.map((name) => `$${name}`).join(", ")}`;
  return {
    fallback,
    read(raw, key) {
      if (typeof raw !== "string") throw mismatch(key, "a string", raw);
      for (const match of raw.matchAll(/\$(\$|\w*)/g)) {
        const name = match[1];
        if (name !== "$" && !placeholders.includes(name)) {
          throw new SchemaError(
            key,
            `uses the unknown placeholder "$${name}" (${allowed}; write $$ for a dollar sign)`,
          );
        }
      }
      return raw;
    },
  };
}

/** A section that may be left out entirely; absent, it reads as `null`. */
export function optional<T>(field: Field<T>): Field<T | null> {
  return { fallback: null, read: (raw, key) => raw === null ? null : field.read(raw, key) };
}

type Shape = Record<string, Field<unknown>>;
type FromShape<S extends Shape> = { readonly [K in keyof S]: Infer<S[K]> };

/**
 * A mapping with exactly the keys of `shape`. Absent keys take their field's
 * fallback; unknown keys are refused so a misspelt key never goes unnoticed.
 * An absent mapping whose fields all have fallbacks reads as all defaults.
 */
export function object<S extends Shape>(shape: S): Field<FromShape<S>> {
  const known = Object.keys(shape);
  const readMapping = (raw: unknown, key: string): FromShape<S> => {
    const prefix = key === "" ? "" : `${key}.`;
    if (raw === undefined || raw === null) raw = {};
    if (typeof raw !== "object" || Array.isArray(raw)) {
      throw mismatch(key, "a mapping of keys to values", raw);
    }
    const values = raw as Record<string, unknown>;
    for (const name of Object.keys(values)) {
      if (!Object.hasOwn(shape, name)) {
        throw new SchemaError(
          `${prefix}${name}`,
          `is not a known key: remove it or use one of ${known.join(", ")}`,
        );
      }
    }
    const result: Record<string, unknown> = {};
    for (const [name, field] of Object.entries(shape)) {
      const value = values[name];
      if (value === undefined) {
        if (field.fallback === undefined) {
          throw new SchemaError(`${prefix}${name}`, "is required but missing");
        }
        result[name] = field.fallback;
      } else {
        result[name] = field.read(value, `${prefix}${name}`);
      }
    }
    return result as FromShape<S>;
  };
  let fallback: FromShape<S> | undefined;
  try {
    fallback = readMapping({}, "");
  } catch {
    fallback = undefined;
  }
  return { fallback, read: readMapping };
}
