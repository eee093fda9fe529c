/**
 * What `/metrics` shows of an instance's link to the cluster, read when
 * scraped.
 *
 * @module
 */

import type { Gauge } from "../../metrics.ts";

/** What the gauges read. */
export interface ClusterState {
  readonly connected: () => boolean;
  /** Room events waiting to be stored. */
  readonly outbox: () => number;
  /** The feeds of the rooms this instance reads. */
  readonly feeds: () => ReadonlyMap<string, { readonly lag: number }>;
  /** Devices relayed to or from another instance. */
  readonly relayed: () => number;
}

export function clusterGauges(state: ClusterState): Gauge[] {
  return [
    {
      name: "chat_cluster_connected",
      help: "1 while the link to NATS works, else 0.",
      read: () => state.connected() ? 1 : 0,
    },
    {
      name: "chat_cluster_outbox",
      help: "Room events waiting to be stored in the stream.",
      read: state.outbox,
    },
    {
      name: "chat_cluster_rooms_followed",
      help: "Rooms this instance reads from the stream.",
      read: () => state.feeds().size,
    },
    {
      name: "chat_cluster_lag",
      help: "Stream messages of followed rooms not yet read.",
      read: () => [...state.feeds().values()].reduce((sum, feed) => sum + feed.lag, 0),
    },
    {
      name: "chat_cluster_relayed_devices",
      help: "Devices relayed to or from another instance (their account's session is on one).",
      read: state.relayed,
    },
  ];
}
