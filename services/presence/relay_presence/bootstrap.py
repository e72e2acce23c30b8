"""Wires settings, Redis, the broker, the handlers and the sweeper of the presence service."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import relay_redis
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from relay_broker import Broker, LaneConsumer, Topology
from relay_config import RelaySettings, load_settings
from relay_contracts import Envelope
from relay_log import configure_logging, get_logger
from relay_ops.command_service import CommandService

from relay_presence.adapters.store import PresenceStore
from relay_presence.handlers import HANDLERS, Deps, sweep
from relay_presence.metrics import REPLICAS, SWEEP_SECONDS

log = get_logger(__name__)

SERVICE = "presence"
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)


class PresenceSettings(RelaySettings):
    presence_ops_port: int = 3200
    ops_host: str = "127.0.0.1"
    # a user on a replica that died is announced offline within this many seconds
    presence_reap_seconds: float = 15.0
    # a user whose last socket closed may reconnect this long without being announced offline
    presence_grace_seconds: float = 3.0
    presence_idle_seconds: float = 300.0

    @property
    def grace(self) -> float:
        return min(self.presence_grace_seconds, self.presence_reap_seconds * 0.3)

    @property
    def sweep_every(self) -> float:
        return max(0.1, min(1.0, self.presence_reap_seconds / 10))

    @property
    def dead_after(self) -> float:
        # silence + grace + one sweep stays within PRESENCE_REAP_SECONDS
        return max(self.presence_reap_seconds * 0.4, self.presence_reap_seconds - self.grace - 2 * self.sweep_every)


@dataclass
class PresenceService(CommandService):
    service = SERVICE

    settings: PresenceSettings
    broker: Broker
    redis: Redis
    deps: Deps
    consumer: LaneConsumer | None = None

    async def start(self) -> None:
        await self.broker.connect()
        self.started_at = time.time()
        consumer = await self.serve(["presence.#"], HANDLERS, self.deps, transient=REDIS_DOWN)
        log.info(
            "presence.started",
            member=consumer.member,
            lanes=consumer.lanes,
            dead_after=self.settings.dead_after,
            grace=self.deps.grace_seconds,
        )

    async def ready(self) -> bool:
        try:
            return self.broker.is_connected and bool(await self.redis.ping())
        except Exception:
            return False

    async def sweeper(self) -> None:
        every = self.settings.sweep_every
        while True:
            await asyncio.sleep(every)
            try:
                # one sweeper across presence instances; the lock expires if its holder dies
                if not await self.redis.set(f"{self.deps.store.p}:sweeper", "1", nx=True, px=int(every * 1000 * 0.9)):
                    continue
                started = time.perf_counter()
                await sweep(self.deps, started_at=self.started_at)
                SWEEP_SECONDS.set(time.perf_counter() - started)
                REPLICAS.set(len(await self.deps.store.replicas()))
            except Exception:
                log.exception("presence.sweep_failed")

    async def close_stores(self) -> None:
        await self.redis.aclose()


def build(settings: PresenceSettings) -> PresenceService:
    broker = Broker(settings.amqp_url, Topology(settings.relay_instance, settings.command_partitions))
    redis = relay_redis.connect(settings.redis_url)

    async def publish(routing_key: str, event: Envelope) -> None:
        await broker.publish_event(routing_key, event)

    deps = Deps(
        PresenceStore(redis, settings.relay_instance),
        publish,
        publish_batch=broker.publish_events,
        grace_seconds=settings.grace,
        idle_seconds=settings.presence_idle_seconds,
        dead_after_seconds=settings.dead_after,
    )
    return PresenceService(settings, broker, redis, deps)


async def run() -> None:
    settings = load_settings(PresenceSettings)
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    service = build(settings)
    await service.run(
        host=settings.ops_host,
        port=settings.presence_ops_port,
        checks={"broker+redis": service.ready},
        jobs=[service.sweeper],
    )
