"""A robust connection to a RabbitMQ cluster: `AMQP_URL` may list several nodes, comma-separated.

aio-pika's `RobustConnection` reconnects to the one URL it was given, so losing that node would
leave the process waiting for it. This subclass moves to the next node at every connection attempt
(and after every loss), so a process rides over the loss of any one node; its channels, queues,
bindings and consumers are restored on the node it lands on, as after any reconnect (its private
queues under fresh names: private_queues.py).
"""

from __future__ import annotations

from typing import Any

from aio_pika import RobustConnection
from yarl import URL

from relay_broker.private_queues import PrivateQueueChannel
from relay_broker.transport import CoalescingTCPTransportFactory


def broker_urls(setting: str) -> list[URL]:
    """`amqp://a:5672/,amqp://b:5672/` -> one URL per node (at least one)."""
    urls = [URL(part.strip()) for part in setting.split(",") if part.strip()]
    if not urls:
        raise ValueError("AMQP_URL names no broker")
    return urls


class FailoverConnection(RobustConnection):
    CHANNEL_CLASS = PrivateQueueChannel

    def __init__(self, urls: list[URL], **kwargs: Any) -> None:
        self._urls = list(urls)
        self._attempt = 0
        self._transport: Any = None
        super().__init__(self._urls[0], **kwargs)
        # every node is reached through the same factory; amqps:// keeps aiormq's TLS one
        if all(u.scheme == "amqp" for u in self._urls):
            self.kwargs["transport_factory"] = CoalescingTCPTransportFactory()
        self._attempt = -1  # the first attempt (which clears `transport`) goes to the first node

    # aio-pika clears `transport` before each connection attempt and when a connection is lost:
    # the moment to move on to the next node
    @property
    def transport(self) -> Any:
        return self._transport

    @transport.setter
    def transport(self, value: Any) -> None:
        if value is None:
            self._attempt += 1
        self._transport = value

    @property
    def url(self) -> URL:
        return self._urls[self._attempt % len(self._urls)]

    @url.setter
    def url(self, value: URL) -> None:
        # aio-pika sets it at construction (already ours) and on update_secret (a new password)
        self._urls = [u.with_password(value.password) if value.password else u for u in self._urls]

    def __str__(self) -> str:
        return ",".join(str(u.with_password("******") if u.password else u) for u in self._urls)
