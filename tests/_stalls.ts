/** Measuring how long the event loop is kept from running, for tests of work that must not hog it. */

/** Watches the event loop: the longest it was kept from running a timer, in milliseconds. */
export function watchStalls(): { longest(): number; stop(): void } {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  return {
    longest: () => Math.max(longest, performance.now() - last),
    stop: () => clearInterval(timer),
  };
}
