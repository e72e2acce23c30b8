// Presence storm load (bench/presence_storm.py drives it): N sockets of one tenant connect, each joins
// one chat, while another user pings with acks. Prints one JSON line with what the clients saw.
//
//   node storm.mjs plan.json
//
// plan: {urls, tokens, chatId, pingerToken, pingEveryMs, timeoutMs, settleMs, join: "chat:join" | null,
//        hello: event a socket sends right after connecting (its dialect) or null}
import { readFileSync } from 'node:fs';
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
    socket.on(event, () => { received[event] += 1; lastDelivery = now(); });
  }
  return socket;
}

function acked(socket, event, body) {
  return new Promise((resolve) => socket.timeout(plan.timeoutMs).emit(event, body, (err, ack) => resolve(err ? null : ack)));
}

function percentile(values, q) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 100) / 100;
}

// the other user: connected before the storm, pings with acks throughout
const pinger = open(plan.urls[0], plan.pingerToken);
await new Promise((resolve, reject) => { pinger.on('connect', resolve); pinger.on('connect_error', reject); });
const rtts = [];
let pinging = true;
const pingLoop = (async () => {
  while (pinging) {
    const sent = now();
    const ack = await acked(pinger, 'ping', {});
    if (ack) rtts.push(now() - sent);
    const wait = plan.pingEveryMs - (now() - sent);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
})();
await new Promise((r) => setTimeout(r, 300));
const before = rtts.length;

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
const stormRtts = rtts.slice(before);
pinging = false;
await pingLoop;

// presence still arriving after the last join belongs to the storm: wait until it has been quiet
const settleStart = now();
while (now() - Math.max(lastDelivery, settleStart) < plan.settleMs && now() - settleStart < plan.timeoutMs) {
  await new Promise((r) => setTimeout(r, 50));
}
const drainedMs = Math.max(lastDelivery, started) - started;
for (const socket of sockets) socket.close();
pinger.close();
console.log(JSON.stringify({
  sockets: plan.tokens.length,
  joined,
  failed,
  firstError,
  stormMs: Math.round(stormMs),
  lastPresenceMs: Math.round(drainedMs),
  pings: stormRtts.length,
  ackP50Ms: percentile(stormRtts, 0.5),
  ackP99Ms: percentile(stormRtts, 0.99),
  ackMaxMs: percentile(stormRtts, 1),
  received,
  clientStates: seenStates,
}));
process.exit(0);
