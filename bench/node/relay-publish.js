// Publishes Relay emits (the envelope the SDK's Emitter sends) straight to `<instance>.emit` over AMQP, fire and
// forget like @socket.io/redis-emitter on the other side: the same line protocol as publish.js, so the fan-out
// bench can offer rates the Python Emitter cannot reach on a 2-core box (~3k confirmed emits/s, and its CPU is
// taken from the gateways it measures).
//
//   node relay-publish.js <amqp url> <instance> <tenant>
//   stdin "<rate> <seconds> <rooms>": rooms > 0 -> to_user("room-<n % rooms>"), 0 -> to_tenant; answers "done <sent>"
"use strict";
const readline = require("readline");
const crypto = require("crypto");
const amqp = require("amqplib");

const [amqpUrl, instance, tenant] = process.argv.slice(2);
// routing keys as relay_contracts.routing.event_key (tenant and target escaped into one topic word)
const word = (v) => v.replace(/%/g, "%25").replace(/\./g, "%2E").replace(/\*/g, "%2A").replace(/#/g, "%23");

async function main() {
  const connection = await amqp.connect(amqpUrl);
  const channel = await connection.createChannel();
  const exchange = `${instance}.emit`;
  const now = () => performance.timeOrigin + performance.now();
  const prefix = crypto.randomBytes(6).toString("hex");
  let seq = 0;
  const publish = (scope, target, payload) => {
    const at = new Date();
    const envelope = {
      id: `${prefix}-${(seq++).toString(36)}`,
      type: "relay.emit",
      version: 1,
      tenant,
      occurredAt: at.toISOString(),
      correlationId: `bench-${prefix}`,
      data: { scope, target, event: "bench", payload, namespace: "/" },
    };
    const key = `${word(tenant)}.${scope}.${word(target)}.relay.emit`;
    return channel.publish(exchange, key, Buffer.from(JSON.stringify(envelope)), {
      contentType: "application/json",
      messageId: envelope.id,
      type: envelope.type,
      deliveryMode: 1,
    });
  };
  console.log("ready");
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const [rate, seconds, rooms] = line.trim().split(/\s+/).map(Number);
    const total = Math.round(rate * seconds);
    const start = now();
    let sent = 0;
    while (sent < total) {
      // catch up to the schedule in 1 ms ticks (as publish.js); wait for the socket when its buffer is full
      const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate) + 1);
      let writable = true;
      for (; sent < due; sent++) {
        const payload = { t: now(), n: sent };
        writable = rooms > 0 ? publish("user", `room-${sent % rooms}`, payload) : publish("tenant", "_", payload);
      }
      if (!writable) await new Promise((r) => channel.once("drain", r));
      else await new Promise((r) => setTimeout(r, 1));
    }
    console.log(`done ${sent}`);
  }
  await channel.close();
  await connection.close();
}

main().catch((err) => { console.error(err); process.exit(1); });
