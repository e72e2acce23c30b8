// Presence storm load (bench/presence_storm.py drives it): N sockets of one tenant connect, each joins
// one chat, while another user pings with acks. Prints one JSON line with what the clients saw.
//
//   node storm.mjs plan.json
//
//   node storm.mjs plan.json pinger   (the other user, its own process)
//
// plan: {urls, tokens, chatId, pingerToken, pingEveryMs, timeoutMs, settleMs, join: "chat:join" | null,
//        hello: event a socket sends right after connecting (its dialect) or null}
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { io } from 'socket.io-client';

const PRESENCE_EVENTS = [
  'user-connected', 'user-disconnected', 'usuario_conectado', 'usuario_desconectado',
  'estado_usuario_cambiado',
];
const plan = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const now = () => Number(process.hrtime.bigint()) / 1e6;
const received = Object.fromEntries(PRESENCE_EVENTS.map((e) => [e, 0]));
let lastDelivery = 0;

function open(url, token) {
  const socket = io(url, {
    auth: { token, ...(plan.dialect ? { dialect: plan.dialect } : {}) },
    transports: ['websocket'],
    reconnection: false,
    timeout: plan.timeoutMs,
  });
  for (const event of PRESENCE_EVENTS) {
    socket.on(event, () => {
      received[event] += 1;
      lastDelivery = now();
    });
  }
  return socket;
}

function acked(socket, event, body) {
  return new Promise((resolve) => socket.timeout(plan.timeoutMs).emit(event, body, (err, ack) => resolve(err ? null : ack)));
}

// the other user: a process of its own (`node storm.mjs plan.json pinger`), so its acks never wait behind the
// load generator's loop opening 1,000 sockets (lines on stdin: stop, close)
if (process.argv[3] === 'pinger') {
  const pinger = open(plan.urls[0], plan.pingerToken);
  await new Promise((resolve, reject) => { pinger.on('connect', resolve); pinger.on('connect_error', reject); });
  const acks = []; // [wall-clock ms when sent, rtt ms]
  let pinging = true;
  const say = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
  let input = '';
  process.stdin.on('data', (chunk) => {
    input += chunk;
    let nl;
    while ((nl = input.indexOf('\n')) >= 0) {
      const line = input.slice(0, nl).trim();
      input = input.slice(nl + 1);
      if (line === 'stop') pinging = false; // the storm is over: report the acks
      else if (line === 'close') {
        pinger.close();
        say({ received, lastDeliveryWall: lastDelivery ? Date.now() - (now() - lastDelivery) : null });
        process.exit(0);
      }
    }
  });
  say({ ready: true });
  // the other user's own loop: a late ack may be this process waiting for a core, not the server
  const pingerLoop = monitorEventLoopDelay({ resolution: 10 });
  pingerLoop.enable();
  while (pinging) {
    const sent = now();
    const sentWall = Date.now();
    const ack = await acked(pinger, 'ping', {});
    if (ack) acks.push([sentWall, now() - sent]);
    const wait = plan.pingEveryMs - (now() - sent);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  pingerLoop.disable();
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  say({ acks, loopDelayMaxMs: ms(pingerLoop.max), loopDelayP99Ms: ms(pingerLoop.percentile(99)) });
  await new Promise(() => {}); // connected until 'close'
}
await new Promise((r) => setTimeout(r, 300));
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
const started = now();
let joined = 0;
let failed = 0;
let firstError = null;
const seenStates = { connected: 0, joinAcked: 0, disconnects: {} };
const sockets = [];
const done = plan.tokens.map((token, i) => new Promise((resolve) => {
  const socket = open(plan.urls[i % plan.urls.length], token);
  sockets.push(socket);
  let settled = false;
  const finish = (error) => {
    if (settled) return;
    settled = true;
    if (error) { failed += 1; firstError ??= error; } else { joined += 1; }
    resolve();
  };
  socket.on('connect_error', (err) => finish(`connect_error: ${err.message}`));
  socket.on('disconnect', (reason) => {
    seenStates.disconnects[reason] = (seenStates.disconnects[reason] || 0) + 1;
    finish(`disconnect: ${reason}`);
  });
  setTimeout(() => finish('no join ack before the deadline'), plan.timeoutMs);
  socket.on('connect', async () => {
    seenStates.connected += 1;
    if (plan.hello) await acked(socket, plan.hello, {});
    if (plan.join) {
      const ack = await acked(socket, plan.join, { chatId: plan.chatId });
      seenStates.joinAcked += 1;
      finish(ack && ack.success ? null : `join: ${JSON.stringify(ack)}`);
    } else {
      finish(null);
    }
  });
}));
await Promise.all(done);
const stormMs = now() - started;
loopDelay.disable();
const startedWall = Date.now() - (now() - started);

// presence still arriving after the last join belongs to the storm: wait until it has been quiet
const settleStart = now();
while (now() - Math.max(lastDelivery, settleStart) < plan.settleMs && now() - settleStart < plan.timeoutMs) {
  await new Promise((r) => setTimeout(r, 50));
}
const drainedMs = Math.max(lastDelivery, started) - started;
for (const socket of sockets) socket.close();
console.log(JSON.stringify({
  sockets: plan.tokens.length,
  joined,
  failed,
  firstError,
  startedWall,
  stormMs: Math.round(stormMs),
  lastPresenceMs: Math.round(drainedMs),
  // the load generator's own event loop (the storm's sockets; the pinger is another process)
  clientLoopDelayP99Ms: Math.round(loopDelay.percentile(99) / 1e4) / 100,
  clientLoopDelayMaxMs: Math.round(loopDelay.max / 1e4) / 100,
  received,
  clientStates: seenStates,
}));
process.exit(0);
