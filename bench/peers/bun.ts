// A peer a user might pick instead: Bun's built-in WebSocket server, fanning
// out with its own publish/subscribe (the idiomatic fast path).
// Usage: bun bench/peers/bun.ts [port]
declare const Bun: {
  serve(options: unknown): { port: number; publish(topic: string, data: string): void };
};
declare const process: {
  argv: string[];
  on(signal: string, handler: () => void): void;
  exit(code: number): void;
};

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.argv[2] ?? 0),
  fetch(request: Request, server: { upgrade(request: Request): boolean }) {
    return server.upgrade(request) ? undefined : new Response("Upgrade required", { status: 426 });
  },
  websocket: {
    open(socket: { subscribe(topic: string): void }) {
      socket.subscribe("room");
    },
    message(_socket: unknown, data: string) {
      const frame = JSON.stringify({
        body: String(data),
        origin: "USER",
        sentAt: new Date().toISOString(),
      });
      // Publishing from the server object reaches every subscriber, the sender included.
      server.publish("room", frame);
    },
  },
});
console.log(`listening on http://127.0.0.1:${server.port}`);
process.on("SIGTERM", () => process.exit(0));
