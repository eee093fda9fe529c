/**
 * Counters for `GET /metrics`, rendered in the Prometheus text format.
 * Counting is a field update, cheap enough for the per-delivery path.
 *
 * @module
 */

/** A count that only goes up. */
export class Counter {
  readonly name: string;
  readonly help: string;
  #value = 0;

  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  /** Adds `by` (default 1). */
  inc(by = 1): void {
    this.#value += by;
  }

  get(): number {
    return this.#value;
  }

  /** The sample lines, in exposition format. */
  samples(): string[] {
    return [`${this.name} ${this.#value}`];
  }
}

/** Counts that only go up, one per value of a label. */
export class LabeledCounter<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly label: string;
  readonly #values = new Map<L, number>();

  /** Every value of the label is reported from the start, at zero. */
  constructor(name: string, help: string, label: { name: string; values: readonly L[] }) {
    this.name = name;
    this.help = help;
    this.label = label.name;
    for (const value of label.values) this.#values.set(value, 0);
  }

  /** Adds `by` (default 1) to the count for `value`. */
  inc(value: L, by = 1): void {
    this.#values.set(value, (this.#values.get(value) ?? 0) + by);
  }

  get(value: L): number {
    return this.#values.get(value) ?? 0;
  }

  /** The sample lines, in exposition format. */
  samples(): string[] {
    return [...this.#values].map(([value, count]) =>
      `${this.name}{${this.label}="${value}"} ${count}`
    );
  }
}

/** A value read when `/metrics` is asked for. */
export interface Gauge {
  readonly name: string;
  readonly help: string;
  read(): number;
}

/** Why an upgrade was refused. */
export type RefusalReason =
  | "origin"
  | "host"
  | "max_connections"
  | "max_connections_per_ip"
  | "connect_rate"
  | "token"
  | "banned";
/** Why the server closed a connection. */
export type CloseCause =
  | "flood"
  | "slow_consumer"
  | "frame_too_large"
  | "inbound_rate"
  | "unauthorized"
  | "removed"
  | "too_many_devices"
  | "try_again";
/** What moderators (and the server API) did. */
export type ModerationAction = "kick" | "mute" | "unmute" | "ban" | "unban" | "topic" | "slow";
/** The class of a server API answer. */
export type ApiStatus = "2xx" | "4xx" | "5xx";
/** Why a message was not sent on. */
export type DropReason = "flood" | "empty" | "room_rate" | "server_rate";

/** Every counter the server keeps. */
export interface Metrics {
  readonly connectionsAccepted: Counter;
  readonly connectionsRefused: LabeledCounter<RefusalReason>;
  readonly connectionsClosed: LabeledCounter<CloseCause>;
  readonly messagesReceived: Counter;
  readonly messagesDelivered: Counter;
  readonly messagesDropped: LabeledCounter<DropReason>;
  readonly errors: Counter;
  readonly historyWriteFailures: Counter;
  readonly historyUnsaved: Counter;
  readonly historyConflicts: Counter;
  readonly sessionsResumed: Counter;
  readonly devicesAdded: Counter;
  readonly sessionsExpired: Counter;
  readonly clusterPublishFailures: Counter;
  readonly clusterMalformed: Counter;
  readonly clusterRefused: Counter;
  readonly clusterOversized: Counter;
  readonly clusterLost: Counter;
  readonly clusterRelaysLost: Counter;
  readonly clusterNotesReceived: Counter;
  readonly presenceSuppressed: Counter;
  readonly roomsReclaimed: Counter;
  readonly acceptFailures: Counter;
  readonly moderationActions: LabeledCounter<ModerationAction>;
  readonly moderationRefused: Counter;
  readonly apiRequests: LabeledCounter<ApiStatus>;
  /** Values the parts of the server report as they are asked; add to it. */
  readonly gauges: Gauge[];
}

/** A fresh set of counters, all at zero. */
export function createMetrics(): Metrics {
  return {
    connectionsAccepted: new Counter(
      "chat_connections_accepted_total",
      "WebSocket connections accepted.",
    ),
    connectionsRefused: new LabeledCounter(
      "chat_connections_refused_total",
      "Requests and WebSocket upgrades refused, by reason.",
      {
        name: "reason",
        values: [
          "origin",
          "host",
          "max_connections",
          "max_connections_per_ip",
          "connect_rate",
          "token",
          "banned",
        ],
      },
    ),
    connectionsClosed: new LabeledCounter(
      "chat_connections_closed_by_server_total",
      "Connections the server closed, by reason.",
      {
        name: "reason",
        values: [
          "flood",
          "slow_consumer",
          "frame_too_large",
          "inbound_rate",
          "unauthorized",
          "removed",
          "too_many_devices",
          "try_again",
        ],
      },
    ),
    messagesReceived: new Counter(
      "chat_messages_received_total",
      "Text frames received from clients.",
    ),
    messagesDelivered: new Counter(
      "chat_messages_delivered_total",
      "Events sent to clients.",
    ),
    messagesDropped: new LabeledCounter(
      "chat_messages_dropped_total",
      "Messages dropped instead of sent on, by reason.",
      { name: "reason", values: ["flood", "empty", "room_rate", "server_rate"] },
    ),
    errors: new Counter(
      "chat_errors_total",
      "Unexpected errors while handling a client's frame.",
    ),
    historyWriteFailures: new Counter(
      "chat_history_write_failures_total",
      "Writes of room history to the store that failed.",
    ),
    historyUnsaved: new Counter(
      "chat_history_unsaved_messages_total",
      "Messages delivered without being stored, because writing failed.",
    ),
    historyConflicts: new Counter(
      "chat_history_conflicts_total",
      "Messages numbered with a seq their room already held for another message (delivered anyway).",
    ),
    sessionsResumed: new Counter(
      "chat_sessions_resumed_total",
      "Dropped sessions picked up again with their token.",
    ),
    devicesAdded: new Counter(
      "chat_devices_added_total",
      "Token mode: connections added to an account's live session as one more device.",
    ),
    sessionsExpired: new Counter(
      "chat_sessions_expired_total",
      "Dropped sessions that were not resumed within session_linger.",
    ),
    clusterPublishFailures: new Counter(
      "chat_cluster_publish_failures_total",
      "Publishes to NATS that failed and were retried.",
    ),
    clusterMalformed: new Counter(
      "chat_cluster_malformed_total",
      "Messages from the cluster that could not be read and were dropped.",
    ),
    clusterRefused: new Counter(
      "chat_cluster_refused_total",
      "Room events refused because too many waited for NATS.",
    ),
    clusterOversized: new Counter(
      "chat_cluster_oversized_total",
      "Room events and private messages refused (or dropped) as larger than NATS's max_payload.",
    ),
    clusterLost: new Counter(
      "chat_cluster_lost_total",
      "Stream messages of rooms read here that NATS dropped before they were read (kept_per_room).",
    ),
    clusterRelaysLost: new Counter(
      "chat_cluster_relays_lost_total",
      "Devices relayed to or from another instance whose link was lost (each closed with 1013).",
    ),
    presenceSuppressed: new Counter(
      "chat_presence_suppressed_total",
      "Join and leave notices left out because a room had too many at once.",
    ),
    roomsReclaimed: new Counter(
      "chat_rooms_reclaimed_total",
      "Empty rooms removed before their time to make way for a new room when max_rooms was reached.",
    ),
    moderationActions: new LabeledCounter(
      "chat_moderation_actions_total",
      "What moderators and the server API did, by action.",
      { name: "action", values: ["kick", "mute", "unmute", "ban", "unban", "topic", "slow"] },
    ),
    moderationRefused: new Counter(
      "chat_moderation_refused_total",
      "Moderation commands refused: not a moderator, or a wrong operator password.",
    ),
    apiRequests: new LabeledCounter(
      "chat_api_requests_total",
      "Server API requests, by the class of their answer.",
      { name: "status", values: ["2xx", "4xx", "5xx"] },
    ),
    acceptFailures: new Counter(
      "chat_accept_failures_total",
      "Times the server could not accept connections (such as out of file descriptors).",
    ),
    clusterNotesReceived: new Counter(
      "chat_cluster_notes_received_total",
      "Room events read from the stream (only rooms with members here are read).",
    ),
    gauges: [],
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
  const counters = Object.values(metrics)
    .filter((value): value is Counter | LabeledCounter<string> =>
      value instanceof Counter || value instanceof LabeledCounter
    )
    .map((counter) => family(counter.name, counter.help, "counter", counter.samples()));
  const reported = metrics.gauges.map((gauge) =>
    family(gauge.name, gauge.help, "gauge", [`${gauge.name} ${gauge.read()}`])
  );
  return [
    family("chat_connections_open", "Open WebSocket connections and lingering sessions.", "gauge", [
      `chat_connections_open ${gauges.openConnections}`,
    ]),
    ...counters,
    ...reported,
    family("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", [
      `process_resident_memory_bytes ${memory.rss}`,
    ]),
    family("process_heap_used_bytes", "JavaScript heap in use, in bytes.", "gauge", [
      `process_heap_used_bytes ${memory.heapUsed}`,
    ]),
  ].join("");
}
