// A peer a user might pick instead: Node.js with the `ws` package, the same
// fan-out as bench/baseline.ts. Usage: node bench/peers/node_ws.mjs [port]
import { WebSocketServer } from "ws";

const server = new WebSocketServer({ host: "127.0.0.1", port: Number(process.argv[2] ?? 0) });
server.on("listening", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
server.on("connection", (socket) => {
  socket.on("message", (data) => {
    const frame = JSON.stringify({
      body: data.toString(),
      origin: "USER",
      sentAt: new Date().toISOString(),
    });
    for (const peer of server.clients) peer.send(frame);
  });
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
