/**
 * The ceiling for any Deno server that sends frame by frame: a minimal
 * Deno.serve fan-out with no rooms, no checks and no protocol beyond one JSON
 * object per message, serialized once and sent to every socket.
 *
 * Usage: deno run --allow-net bench/baseline.ts [port]
 */

const sockets = new Set<WebSocket>();

const server = Deno.serve({
  hostname: "127.0.0.1",
  port: Number(Deno.args[0] ?? 0),
  onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
}, (request) => {
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.addEventListener("open", () => sockets.add(socket));
  socket.addEventListener("close", () => sockets.delete(socket));
  socket.addEventListener("message", (event) => {
    const frame = JSON.stringify({
      body: event.data,
      origin: "USER",
      sentAt: new Date().toISOString(),
    });
    for (const peer of sockets) peer.send(frame);
  });
  return response;
});

Deno.addSignalListener("SIGTERM", () => server.shutdown().then(() => Deno.exit(0)));
