/** Instances joined through a private nats-server, for the cluster tests. */

import { TestClient, type V2Frame } from "./_client.ts";
import { testConfigDir } from "./_config.ts";
import { type NatsOptions, type NatsServer, startNats } from "./_nats.ts";
import { type ServerProcess, startServerProcess } from "./_process.ts";

/** A nats-server and instances of the chat joined through it. */
export interface Cluster {
  readonly nats: NatsServer;
  readonly instances: ServerProcess[];
  /** A v2 client on instance `index`, past its welcome; closed with the cluster. */
  v2(index: number, first: Record<string, unknown>): Promise<{
    client: TestClient<V2Frame>;
    welcome: V2Frame;
  }>;
  /**
   * A text client on instance `index`, past its welcome; closed with the
   * cluster. With `address`, it comes from there (through the trusted proxy).
   */
  text(index: number, query?: string, address?: string): Promise<TestClient>;
  /** The value of a metric of instance `index`. */
  metric(index: number, name: string): Promise<number>;
  dispose(): Promise<void>;
}

/** What the cluster's instances run with. */
export interface ClusterOptions {
  instances: number;
  /** YAML added under `cluster.nats`, indented by four spaces. */
  nats?: string;
  chat?: Record<string, string>;
  /** More environment variables for every instance. */
  env?: Record<string, string>;
  /** Keys of `server.yaml`'s `history` section, as YAML values. */
  history?: string;
  /** Keys of `server.yaml`'s `limits` to set, as YAML values. */
  limits?: Record<string, string>;
  /** How the nats-server is set up. */
  natsServer?: NatsOptions;
}

export function wsUrl(instance: ServerProcess, query = ""): string {
  return `${instance.httpUrl.replace(/^http/, "ws")}/ws${query}`;
}

/** Starts nats-server and the instances; flood control is out of the way. */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const nats = await startNats(options.natsServer);
  const configDir = await testConfigDir({
    floodOff: true,
    chat: options.chat,
    limits: { max_connections_per_ip: "1000", ...options.limits },
    server:
      `cluster:\n  nats:\n    servers: ["${nats.url}"]\n    name_ttl: 2\n    heartbeat: 0.5\n${
        options.nats ?? ""
      }`,
  });
  const instances: ServerProcess[] = [];
  const clients: { close(): Promise<void> }[] = [];
  const dispose = async (): Promise<void> => {
    await Promise.allSettled(clients.map((client) => client.close()));
    await Promise.allSettled(instances.map((instance) => instance.kill()));
    await nats.dispose();
    await Deno.remove(configDir, { recursive: true });
  };
  try {
    for (let i = 0; i < options.instances; i++) {
      instances.push(
        await startServerProcess({ env: { CHAT_CONFIG_DIR: configDir, ...options.env } }),
      );
    }
  } catch (error) {
    await dispose();
    throw error;
  }
  return {
    nats,
    instances,
    async v2(index, first) {
      const client = await TestClient.connect<V2Frame>(wsUrl(instances[index]), "chat.v2");
      clients.push(client);
      client.send(JSON.stringify(first));
      const welcome = await client.waitFor((frame) => frame.type === "welcome", "the welcome");
      return { client, welcome };
    },
    async text(index, query = "", address) {
      const headers = address === undefined ? undefined : { "X-Forwarded-For": address };
      const client = await TestClient.connect(wsUrl(instances[index], query), undefined, headers);
      clients.push(client);
      await client.waitFor((frame) => frame.body.startsWith("Welcome, "), "the welcome");
      return client;
    },
    async metric(index, name) {
      const page = await (await fetch(`${instances[index].httpUrl}/metrics`)).text();
      const line = page.split("\n").find((line) => line.startsWith(`${name} `));
      if (line === undefined) throw new Error(`No metric ${name}`);
      return Number(line.slice(name.length + 1));
    },
    dispose,
  };
}
