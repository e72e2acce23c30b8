// Publishes through @socket.io/redis-emitter (the Node system's server-side publish API):
// reads "<rate> <seconds> <rooms>" lines on stdin, publishes `rate` events/s for `seconds` round robin over
// rooms named 0..rooms-1 (rooms=0: the room "bench"), answers "done <sent>".
"use strict";
const readline = require("readline");
const { Emitter } = require("@socket.io/redis-emitter");
const { createClient } = require("redis");

const [redisUrl, key] = process.argv.slice(2);

async function main() {
  const client = createClient({ url: redisUrl });
  await client.connect();
  const emitter = new Emitter(client, { key });
  const now = () => performance.timeOrigin + performance.now();
  console.log("ready");
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const [rate, seconds, rooms] = line.trim().split(/\s+/).map(Number);
    const total = Math.round(rate * seconds);
    const start = now();
    let sent = 0;
    while (sent < total) {
      // catch up to the schedule in 1 ms ticks
      const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate) + 1);
      for (; sent < due; sent++) {
        const room = rooms > 0 ? String(sent % rooms) : "bench";
        emitter.to(room).emit("bench", { t: now(), n: sent });
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    console.log(`done ${sent}`);
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
