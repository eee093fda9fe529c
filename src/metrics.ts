/**
 * Counters for `GET /metrics`, rendered in the Prometheus text format.
 * Counting is a map update, cheap enough for the per-message path.
 *
 * @module
 */

/** A monotonically increasing count, optionally split by one label. */
export class Counter {
  readonly name: string;
  readonly help: string;
  readonly label: string | undefined;
  readonly #values = new Map<string, number>();

  /** `label` names the label and the values reported from the start, at zero. */
  constructor(name: string, help: string, label?: { name: string; values: readonly string[] }) {
    this.name = name;
    this.help = help;
    this.label = label?.name;
    for (const value of label?.values ?? []) this.#values.set(value, 0);
  }

  /** The count of a counter without a label, kept apart: it is bumped once per delivery. */
  #total = 0;

  /** Adds `by` to the count for `labelValue` (leave it out when the counter has no label). */
  inc(labelValue = "", by = 1): void {
    if (labelValue === "") this.#total += by;
    else this.#values.set(labelValue, (this.#values.get(labelValue) ?? 0) + by);
  }

  /** The current count for `labelValue`. */
  get(labelValue = ""): number {
    return labelValue === "" ? this.#total : this.#values.get(labelValue) ?? 0;
  }

  /** The sample lines, in exposition format. */
  samples(): string[] {
    if (this.label === undefined) return [`${this.name} ${this.get()}`];
    return [...this.#values].map(([value, count]) =>
      `${this.name}{${this.label}="${value}"} ${count}`
    );
  }
}

/** Every counter the server keeps. */
export interface Metrics {
  readonly connectionsAccepted: Counter;
  readonly connectionsRefused: Counter;
  readonly connectionsClosed: Counter;
  readonly messagesReceived: Counter;
  readonly messagesDelivered: Counter;
  readonly messagesDropped: Counter;
  readonly errors: Counter;
}

/** A fresh set of counters, all at zero. */
export function createMetrics(): Metrics {
  return {
    connectionsAccepted: new Counter(
      "chat_connections_accepted_total",
      "WebSocket connections accepted.",
    ),
    connectionsRefused: new Counter(
      "chat_connections_refused_total",
      "WebSocket upgrades refused, by reason.",
      { name: "reason", values: ["origin", "max_connections", "max_connections_per_ip"] },
    ),
    connectionsClosed: new Counter(
      "chat_connections_closed_by_server_total",
      "Connections the server closed, by reason.",
      { name: "reason", values: ["flood", "slow_consumer", "frame_too_large"] },
    ),
    messagesReceived: new Counter(
      "chat_messages_received_total",
      "Text frames received from clients.",
    ),
    messagesDelivered: new Counter(
      "chat_messages_delivered_total",
      "Events sent to clients.",
    ),
    messagesDropped: new Counter(
      "chat_messages_dropped_total",
      "Messages dropped instead of sent on, by reason.",
      { name: "reason", values: ["flood", "empty"] },
    ),
    errors: new Counter(
      "chat_errors_total",
      "Unexpected errors while handling a client's frame.",
    ),
  };
}

/** Point-in-time values reported beside the counters. */
export interface Gauges {
  /** Open WebSocket connections. */
  readonly openConnections: number;
}

function family(name: string, help: string, type: string, samples: string[]): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${samples.join("\n")}\n`;
}

/** The whole `/metrics` page. */
export function renderMetrics(metrics: Metrics, gauges: Gauges): string {
  const memory = Deno.memoryUsage();
  const counters = Object.values(metrics).map((counter: Counter) =>
    family(counter.name, counter.help, "counter", counter.samples())
  );
  return [
    family("chat_connections_open", "Open WebSocket connections.", "gauge", [
      `chat_connections_open ${gauges.openConnections}`,
    ]),
    ...counters,
    family("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", [
      `process_resident_memory_bytes ${memory.rss}`,
    ]),
    family("process_heap_used_bytes", "JavaScript heap in use, in bytes.", "gauge", [
      `process_heap_used_bytes ${memory.heapUsed}`,
    ]),
  ].join("");
}
