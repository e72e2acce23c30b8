// Node reference for the fan-out benchmark: Socket.IO 4 with @socket.io/redis-adapter, one process per port.
// Sockets join the room named by their `room` query (default "bench"). Events come from publish.js through Redis.
"use strict";
const http = require("http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const [port, redisUrl, key] = process.argv.slice(2);

async function main() {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const server = http.createServer();
  // permessage-deflate off, as on Relay's gateway
  const io = new Server(server, { adapter: createAdapter(pub, sub, { key }), perMessageDeflate: false });
  io.on("connection", (socket) => socket.join(String(socket.handshake.query.room || "bench")));
  server.listen(Number(port), "127.0.0.1", () => console.log("ready"));
}

main().catch((err) => { console.error(err); process.exit(1); });
