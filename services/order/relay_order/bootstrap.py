"""Wires settings, MongoDB, the broker and the handlers of the order service."""

from __future__ import annotations

import relay_redis
from relay_broker import Broker, LaneConsumer, Topology
from relay_config import RelaySettings, load_settings
from relay_contracts import Envelope
from relay_contracts.deadline import CommitDelays
from relay_log import configure_logging, get_logger
from relay_mongo import TRANSIENT_ERRORS, connect, ping
from relay_ops.command_service import CommandService
from relay_redis.claims import RedisClaims

from relay_order.adapters.repo import OrderRepo
from relay_order.handlers import HANDLERS, Deps

log = get_logger(__name__)

SERVICE = "order"


class OrderSettings(RelaySettings):
    order_ops_port: int = 3300
    ops_host: str = "127.0.0.1"


class OrderService(CommandService):
    service = SERVICE

    def __init__(self, settings: OrderSettings) -> None:
        self.settings = settings
        self.broker = Broker(settings.amqp_url, Topology(settings.relay_instance, settings.command_partitions))
        self.mongo, self.db = connect(settings.mongo_url, settings.database_name)
        self.redis = relay_redis.connect(settings.redis_url)
        self.deps = Deps(
            OrderRepo(self.db),
            self._publish,
            claims=RedisClaims(self.redis, settings.relay_instance, ttl_seconds=settings.command_claim_ttl_seconds),
            delays=CommitDelays(settings.test_commit_delays),
        )
        self.consumer: LaneConsumer | None = None

    async def _publish(self, routing_key: str, event: Envelope) -> None:
        await self.broker.publish_event(routing_key, event)

    async def start(self) -> None:
        await self.broker.connect()
        await self.deps.orders.ensure_indexes()
        # commands only: events of the same names travel on relay.events, never to these queues
        consumer = await self.serve(
            ["order.#"], HANDLERS, self.deps, transient=TRANSIENT_ERRORS, claims=self.deps.claims
        )
        log.info("order.started", member=consumer.member, lanes=consumer.lanes)

    async def ready(self) -> bool:
        return self.broker.is_connected and await ping(self.db)

    async def close_stores(self) -> None:
        await self.mongo.close()
        await self.redis.aclose()


async def run() -> None:
    settings = load_settings(OrderSettings)
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    service = OrderService(settings)
    await service.run(host=settings.ops_host, port=settings.order_ops_port, checks={"broker+mongo": service.ready})
