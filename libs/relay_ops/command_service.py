"""What the message, order and presence services share: one broker, a lane consumer of their command
queues, the ops endpoints, the lag and dead-letter samplers, and the same drain-then-close life."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

from relay_broker import Broker, CommandHandler, LaneConsumer, serve_commands

from relay_ops import ReadinessCheck, run_service
from relay_ops.metrics import command_observer, sample_consumer_lag, sample_dead_letters

Job = Callable[[], Coroutine[Any, Any, None]]


class CommandService:
    """Mixed into a service that sets `service` (its name, which names its queues), `broker` and
    `consumer` (None until `serve`), and defines `start`, `ready` and `close_stores`."""

    service: str
    broker: Broker
    consumer: LaneConsumer | None

    async def start(self) -> None:
        raise NotImplementedError

    async def close_stores(self) -> None:
        """Close what the service holds besides the broker (database, Redis)."""

    async def serve(
        self,
        patterns: list[str],
        handlers: Mapping[str, Callable[..., Awaitable[Any]]],
        deps: object,
        *,
        transient: tuple[type[BaseException], ...],
        claims: Any = None,
    ) -> LaneConsumer:
        """Consume the commands matching `patterns`, each handler called with `deps`."""
        bound: dict[str, CommandHandler] = {name: functools.partial(fn, deps=deps) for name, fn in handlers.items()}
        self.consumer = await serve_commands(
            self.broker,
            self.service,
            patterns,
            bound,
            observe=command_observer(self.service),
            transient=transient,
            claims=claims,
        )
        return self.consumer

    async def sample_lag(self) -> None:
        await sample_consumer_lag(
            self.broker.connection, self.service, self.broker.topology.service_queues(self.service)
        )

    async def drain(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    async def close(self) -> None:
        await self.drain()  # the commands in hand are answered before the connection goes
        await self.broker.close()
        await self.close_stores()

    async def run(self, *, host: str, port: int, checks: dict[str, ReadinessCheck], jobs: Sequence[Job] = ()) -> None:
        await run_service(
            self.start,
            self.close,
            host=host,
            port=port,
            checks=checks,
            jobs=[*jobs, self.sample_lag, functools.partial(sample_dead_letters, self.broker)],
            drain=self.drain,
        )
