"""python-socketio's Redis manager, made observable: readiness must know whether the listener is
subscribed right now, not only that its task exists (ARCHITECTURE "Health of the delivery path").

The stock listener retries forever but keeps no state a health check can read, and backs off up to
60 s, so a replica could look ready for a minute after Redis returned while hearing nothing from
the other replicas. This subclass records when the subscription is live and caps the backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import socketio
from relay_log import get_logger

from relay_gateway.fanout import FanoutEmit
from relay_gateway.metrics import ADAPTER_LISTENER_LOST

log = get_logger(__name__)

MAX_RETRY_SECONDS = 5.0


class ObservableRedisManager(socketio.AsyncRedisManager, FanoutEmit):  # type: ignore[misc]
    subscribed: bool = False

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        retry_sleep = 0.5
        while True:
            try:
                if not self.subscribed:
                    self._redis_connect()
                    await self.pubsub.subscribe(self.channel)
                    self.subscribed = True
                    retry_sleep = 0.5
                    log.info("adapter.subscribed", channel=self.channel)
                async for message in self.pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                self.subscribed = False
                raise
            except Exception as exc:
                self.subscribed = False
                ADAPTER_LISTENER_LOST.inc()
                log.error("adapter.listener_lost", error=str(exc), retry_in=retry_sleep)
                await asyncio.sleep(retry_sleep)
                retry_sleep = min(retry_sleep * 2, MAX_RETRY_SECONDS)
