// Publishes Relay emits (the envelope the SDK's Emitter sends) straight to `<instance>.emit` over AMQP, fire and
// forget like @socket.io/redis-emitter on the other side: the same line protocol (paced.js), so the fan-out
// bench can offer rates the Python Emitter cannot reach on a 2-core box (~3k confirmed emits/s, and its CPU is
// taken from the gateways it measures).
//
//   node relay-publish.js <amqp url> <instance> <tenant>
//   stdin "<rate> <seconds> <rooms>": rooms > 0 -> to_user("room-<n % rooms>"), 0 -> to_tenant; answers "done <sent>"
"use strict";
const crypto = require("crypto");
const amqp = require("amqplib");
const { now, servePaced } = require("./paced");

const [amqpUrl, instance, tenant] = process.argv.slice(2);
// routing keys as relay_contracts.routing.event_key (tenant and target escaped into one topic word)
const word = (v) => v.replace(/%/g, "%25").replace(/\./g, "%2E").replace(/\*/g, "%2A").replace(/#/g, "%23");

async function main() {
  const connection = await amqp.connect(amqpUrl);
  const channel = await connection.createChannel();
  const exchange = `${instance}.emit`;
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
  await servePaced(
    (n, rooms) => {
      const payload = { t: now(), n };
      return rooms > 0 ? publish("user", `room-${n % rooms}`, payload) : publish("tenant", "_", payload);
    },
    () => new Promise((r) => channel.once("drain", r)),
  );
  await channel.close();
  await connection.close();
}

main().catch((err) => { console.error(err); process.exit(1); });
