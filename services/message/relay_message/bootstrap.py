"""Wires settings, MongoDB, the broker and the handlers of the message service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import relay_redis
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from relay_broker import Broker, LaneConsumer, Topology
from relay_config import RelaySettings, load_settings
from relay_contracts import Envelope
from relay_contracts.deadline import CommitDelays
from relay_log import configure_logging, get_logger
from relay_mongo import TRANSIENT_ERRORS, connect, ping
from relay_ops.command_service import CommandService
from relay_redis.claims import RedisClaims

from relay_message import changes, channels, receipts
from relay_message.adapters.files import FileRepo
from relay_message.adapters.repo import ConversationRepo, MessageRepo
from relay_message.files import FILE_HANDLERS
from relay_message.handlers import HANDLERS, Deps

log = get_logger(__name__)

SERVICE = "message"


class MessageSettings(RelaySettings):
    message_ops_port: int = 3100
    ops_host: str = "127.0.0.1"
    # commands in hand at once: enough for a busy conversation's sends to wait together (docs/ingest.md)
    message_prefetch: int = 512


@dataclass
class MessageService(CommandService):
    service = SERVICE

    settings: MessageSettings
    broker: Broker
    mongo: AsyncMongoClient[dict[str, Any]]
    deps: Deps
    redis: Redis
    consumer: LaneConsumer | None = None

    async def start(self) -> None:
        await self.broker.connect()
        await self.deps.conversations.ensure_indexes()
        await self.deps.messages.ensure_indexes()
        if self.deps.files is not None:
            await self.deps.files.ensure_indexes()
        every = {**HANDLERS, **FILE_HANDLERS, **channels.HANDLERS, **changes.HANDLERS, **receipts.HANDLERS}
        consumer = await self.serve(
            ["conversation.#", "message.#", "file.#"],
            every,
            self.deps,
            transient=TRANSIENT_ERRORS,
            claims=self.deps.claims,
        )
        log.info("message.started", member=consumer.member, lanes=consumer.lanes)

    async def ready(self) -> bool:
        return self.broker.is_connected and await ping(self.mongo[self.settings.database_name])

    async def close_stores(self) -> None:
        await self.mongo.close()
        await self.redis.aclose()


def build(settings: MessageSettings) -> MessageService:
    broker = Broker(
        settings.amqp_url,
        Topology(settings.relay_instance, settings.command_partitions),
        prefetch=settings.message_prefetch,
    )
    mongo, db = connect(settings.mongo_url, settings.database_name)
    redis = relay_redis.connect(settings.redis_url)

    async def publish(routing_key: str, event: Envelope) -> None:
        await broker.publish_event(routing_key, event)

    deps = Deps(
        ConversationRepo(db),
        MessageRepo(db),
        publish,
        max_text_length=settings.max_text_length,
        files=FileRepo(db),
        publish_batch=broker.publish_events,
        claims=RedisClaims(redis, settings.relay_instance, ttl_seconds=settings.command_claim_ttl_seconds),
        delays=CommitDelays(settings.test_commit_delays),
    )
    return MessageService(settings, broker, mongo, deps, redis)


async def run() -> None:
    settings = load_settings(MessageSettings)
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    service = build(settings)
    await service.run(host=settings.ops_host, port=settings.message_ops_port, checks={"broker+mongo": service.ready})
