// Publishes through @socket.io/redis-emitter (the Node system's server-side publish API), paced by paced.js:
// events round robin over rooms named 0..rooms-1 (rooms=0: the room "bench").
"use strict";
const { Emitter } = require("@socket.io/redis-emitter");
const { createClient } = require("redis");
const { now, servePaced } = require("./paced");

const [redisUrl, key] = process.argv.slice(2);

async function main() {
  const client = createClient({ url: redisUrl });
  await client.connect();
  const emitter = new Emitter(client, { key });
  await servePaced((n, rooms) => {
    emitter.to(rooms > 0 ? String(n % rooms) : "bench").emit("bench", { t: now(), n });
  });
}

main().catch((err) => { console.error(err); process.exit(1); });
