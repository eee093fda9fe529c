/**
 * How many file descriptors the process holds against its limit, read from
 * `/proc` (Linux). Deno lets a process read `/proc` only when it runs with
 * `--allow-all`; otherwise, and on other systems, they are unknown. Sampled,
 * because counting them costs a directory read.
 *
 * @module
 */

import type { Descriptors } from "../http/handler.ts";

/** The soft limit on open files, from /proc/self/limits. */
function descriptorLimit(): number | undefined {
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const soft = /^Max open files\s+(\d+)/m.exec(limits)?.[1];
    return soft === undefined ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

function openDescriptors(): number | undefined {
  try {
    let open = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) open++;
    return open;
  } catch {
    return undefined;
  }
}

/** The last count of descriptors, taken every so often. */
export interface DescriptorWatch {
  current(): Descriptors;
  stop(): void;
}

/** Samples the descriptors every `intervalMs`; `undefined` when they cannot be read here. */
export function watchDescriptors(intervalMs: number): DescriptorWatch | undefined {
  const limit = descriptorLimit();
  const open = openDescriptors();
  if (limit === undefined || open === undefined) return undefined;
  let sample: Descriptors = { open, limit };
  const timer = setInterval(() => {
    // Counting takes a descriptor itself: failing now means none is left.
    sample = { open: openDescriptors() ?? limit, limit };
  }, intervalMs);
  return {
    current: () => sample,
    stop: () => clearInterval(timer),
  };
}
