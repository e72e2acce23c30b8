// The line protocol of the benchmark's publishers (publish.js, relay-publish.js): prints "ready", then for each
// "<rate> <seconds> <rooms>" line on stdin calls send(n, rooms) `rate` times a second for `seconds`, catching up
// to the schedule in 1 ms ticks, and answers "done <sent>". A send that returns false (a full socket buffer)
// makes the next tick wait for `untilWritable` instead.
"use strict";
const readline = require("readline");

const now = () => performance.timeOrigin + performance.now();

async function servePaced(send, untilWritable = null) {
  console.log("ready");
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const [rate, seconds, rooms] = line.trim().split(/\s+/).map(Number);
    const total = Math.round(rate * seconds);
    const start = now();
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate) + 1);
      let writable = true;
      for (; sent < due; sent++) writable = send(sent, rooms) !== false;
      if (!writable && untilWritable) await untilWritable();
      else await new Promise((r) => setTimeout(r, 1));
    }
    console.log(`done ${sent}`);
  }
}

module.exports = { now, servePaced };
