// Load clients: `count` socket.io-client sockets (WebSocket only), round robin over the URLs.
// Config is one JSON argument: {urls, count, namespace, tokens?: [one per socket], roomList?: [one per socket], event}.
// Commands on stdin: "reset [<window end, epoch ms>]" (zero the counters), "mark" (the count of messages handled
// by the window's end: a client that lags behind its socket answers "mark" only after the messages already waiting,
// so "received" at that moment would count late ones), "report" (print JSON).
"use strict";
const readline = require("readline");
const { io } = require("socket.io-client");

const fs = require("fs");
// the argument is the JSON itself or, for thousands of tokens (argv has a size limit), a file holding it
const arg = process.argv[2];
const cfg = JSON.parse(arg.startsWith("{") ? arg : fs.readFileSync(arg, "utf8"));
const now = () => performance.timeOrigin + performance.now();
let received = 0;
let marked = 0;
let inWindow = 0;
let windowEnd = Infinity;
let latencies = [];

function pct(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;
}

async function connectAll() {
  const sockets = [];
  const batch = 100;
  for (let i = 0; i < cfg.count; i += batch) {
    const wave = [];
    for (let j = i; j < Math.min(cfg.count, i + batch); j++) {
      const url = cfg.urls[j % cfg.urls.length] + (cfg.namespace || "/");
      // the fan-out is measured, not the connect storm: 5,000 handshakes at once may take a while
      const opts = { transports: ["websocket"], forceNew: true, reconnection: false, timeout: 120000 };
      if (cfg.tokens) opts.auth = { token: cfg.tokens[j] };
      if (cfg.roomList) opts.query = { room: cfg.roomList[j] };
      const s = io(url, opts);
      s.on(cfg.event, (m) => {
        received++;
        const at = now();
        if (at <= windowEnd) inWindow++;
        latencies.push(at - m.t);
      });
      wave.push(new Promise((resolve, reject) => {
        s.once("connect", resolve);
        s.once("connect_error", (e) => reject(new Error(`connect_error: ${e.message}`)));
      }));
      sockets.push(s);
    }
    await Promise.all(wave);
  }
  return sockets;
}

async function main() {
  const sockets = await connectAll();
  console.log(JSON.stringify({ ready: sockets.length }));
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const [cmd, arg] = line.trim().split(/\s+/);
    if (cmd === "reset") {
      received = 0; marked = 0; inWindow = 0; latencies = [];
      windowEnd = arg ? Number(arg) : Infinity;
      console.log(JSON.stringify({ ok: true }));
    } else if (cmd === "mark") {
      marked = windowEnd === Infinity ? received : inWindow;
      console.log(JSON.stringify({ marked }));
    } else if (cmd === "report") {
      const sorted = Float64Array.from(latencies).sort();
      const disconnected = sockets.filter((s) => !s.connected).length;
      console.log(JSON.stringify({ received, marked, p50: pct(sorted, 0.5), p99: pct(sorted, 0.99), disconnected }));
    } else if (cmd === "quit") {
      sockets.forEach((s) => s.close());
      process.exit(0);
    }
  }
}

main().catch((err) => { console.error(err.message); process.exit(1); });
