"""Wires settings, MongoDB, the broker and the handlers of the order service."""

from __future__ import annotations

import functools

import relay_redis
from relay_broker import Broker, CommandHandler, LaneConsumer, Topology, serve_commands
from relay_config import RelaySettings, load_settings
from relay_contracts import Envelope
from relay_contracts.deadline import CommitDelays
from relay_log import configure_logging, get_logger
from relay_mongo import TRANSIENT_ERRORS, connect, ping
from relay_ops import run_service
from relay_ops.metrics import command_observer, sample_consumer_lag, sample_dead_letters
from relay_redis.claims import RedisClaims

from relay_order.adapters.repo import OrderRepo
from relay_order.handlers import HANDLERS, Deps

log = get_logger(__name__)

SERVICE = "order"


class OrderSettings(RelaySettings):
    order_ops_port: int = 3300
    ops_host: str = "127.0.0.1"


class OrderService:
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
        handlers: dict[str, CommandHandler] = {
            name: functools.partial(fn, deps=self.deps) for name, fn in HANDLERS.items()
        }
        # commands only: events of the same names travel on relay.events, never to these queues
        self.consumer = await serve_commands(
            self.broker,
            SERVICE,
            ["order.#"],
            handlers,
            observe=command_observer(SERVICE),
            transient=TRANSIENT_ERRORS,
            claims=self.deps.claims,
        )
        log.info("order.started", member=self.consumer.member, lanes=self.consumer.lanes)

    async def ready(self) -> bool:
        return self.broker.is_connected and await ping(self.db)

    async def sample_lag(self) -> None:
        await sample_consumer_lag(self.broker.connection, SERVICE, self.broker.topology.service_queues(SERVICE))

    async def drain(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    async def close(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()  # the commands in hand are answered before the connection goes
        await self.broker.close()
        await self.mongo.close()
        await self.redis.aclose()


async def run() -> None:
    settings = load_settings(OrderSettings)
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    service = OrderService(settings)
    await run_service(
        service.start,
        service.close,
        host=settings.ops_host,
        port=settings.order_ops_port,
        checks={"broker+mongo": service.ready},
        jobs=[service.sample_lag, functools.partial(sample_dead_letters, service.broker)],
        drain=service.drain,
    )
