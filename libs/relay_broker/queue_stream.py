"""A private queue consumed on a lean AMQP connection of its own: a gateway's event queue.

Every event a gateway delivers comes through one exclusive queue, at up to thousands of events a second per
replica. Through aio-pika that receive path (aiormq's frame reader task, pamqp objects for each frame, the
channel's queue, a task per message, an IncomingMessage) cost ~4 µs of CPU per delivery at 16k deliveries/s in
a room of 200, about the whole difference to Node Socket.IO's CPU per delivery (bench/reports/fanout.md; the
probe that measured it is in git history as bench/experiments/lean_amqp.py). Here the frames are parsed as they
arrive (`FrameReader`): a Basic.Deliver, its header and body become one `(link, tag, body)` in the stream's
inbox, with no task and no object per frame; acks are `basic.ack multiple` frames written directly. Everything
else the process sends to RabbitMQ (commands, replies, RPC, roll call) stays on aio-pika (relay_broker.broker).

What it keeps of aio-pika's robust, private queue (relay_broker.private_queues, failover):
- the queue is exclusive and declared under a fresh name `<base>.<token>` on every connection, with every
  binding it holds (`bind` / `unbind` while connected, all of them again after a reconnect);
- a lost connection is replaced, moving to the next node of `AMQP_URL` at every attempt (`reconnect_interval`
  apart, from the URL's query as for aio-pika); `amqps://` with aio-pika's TLS query (cafile, capath, keyfile,
  certfile, no_verify_ssl); heartbeats (`heartbeat`, 60 s unless the URL says);
- the broker closing the channel or connection, or cancelling the consumer (its queue deleted), ends the
  connection and starts a fresh one: a new name, bindings and consumer;
- a delivery's tag belongs to its connection (`Link`): what was received but not acked when a connection ends
  is never acked on the next one (the old queue, and whatever it held, died with the old connection).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import struct
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import pamqp.frame
from pamqp import commands as c
from pamqp.common import FieldTable
from relay_log import get_logger
from yarl import URL

from relay_broker.failover import broker_urls
from relay_broker.private_queues import fresh_name

log = get_logger(__name__)

CONNECT_TIMEOUT_SECONDS = 10.0  # one attempt: TCP, AMQP handshake, the queue declared, bound and consumed
RESTORE_WAIT_SECONDS = 5.0  # `restored()` waits at most this long for a reconnect to finish
CLOSE_WAIT_SECONDS = 1.0  # a closing connection waits this long for the broker's Connection.CloseOk
CHANNEL = 1

_FRAME = struct.Struct(">BHI")  # type, channel, payload size; then the payload and 0xCE
_U64 = struct.Struct(">Q")
_ACK = struct.Struct(">BHIHHQB")  # a basic.ack frame without its end byte
_BASIC_DELIVER = b"\x00\x3c\x00\x3c"  # class 60 (basic), method 60 (deliver)
_FRAME_END = 0xCE
_HEARTBEAT = b"\x08\x00\x00\x00\x00\x00\x00\xce"
METHOD, HEADER, BODY, HEARTBEAT = 1, 2, 3, 8

Delivery = tuple["Link", int, bytes]  # the connection it came on, its delivery tag, its body


class ProtocolError(Exception):
    """The broker sent bytes that are not the AMQP 0-9-1 this reader expects."""


class Closed(ConnectionError):
    """The connection (or its channel) ended; `reason` says how. `refused`: the broker closed the channel,
    in answer to what was asked last (a bind to a missing exchange, say)."""

    def __init__(self, reason: str, *, refused: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refused = refused


class FrameReader:
    """Splits the bytes of a connection into frames. A delivery (Basic.Deliver, its content header, its body
    frames) goes to `on_delivery(tag, body)` without building a frame object; every other method frame goes
    to `on_method(channel, method)` as pamqp unmarshals it; heartbeats are dropped."""

    def __init__(self, on_delivery: Callable[[int, bytes], None], on_method: Callable[[int, Any], None]) -> None:
        self._on_delivery = on_delivery
        self._on_method = on_method
        self._buffer = bytearray()
        self._state = METHOD  # what the next frame of the channel must be: a method, a content header, a body
        self._tag = 0
        self._size = 0  # of the body being received
        self._parts: list[bytes] = []
        self._received = 0

    def feed(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        pos, available = 0, len(buf)
        try:
            while available - pos >= 8:
                kind, channel, size = _FRAME.unpack_from(buf, pos)
                end = pos + 7 + size  # the end byte's position
                if end >= available:
                    break
                if buf[end] != _FRAME_END:
                    raise ProtocolError(f"frame of type {kind} does not end with 0xCE")
                start = pos + 7
                pos = end + 1
                if kind == METHOD:
                    if self._state != METHOD:
                        raise ProtocolError("a method frame inside a message's content")
                    if buf[start : start + 4] == _BASIC_DELIVER:
                        # consumer tag (a short string), then the delivery tag
                        (self._tag,) = _U64.unpack_from(buf, start + 5 + buf[start + 4])
                        self._state = HEADER
                    else:
                        _, _, method = pamqp.frame.unmarshal(bytes(buf[start - 7 : pos]))
                        self._on_method(channel, method)
                elif kind == HEADER:
                    if self._state != HEADER:
                        raise ProtocolError("a content header without its Basic.Deliver")
                    (self._size,) = _U64.unpack_from(buf, start + 4)  # after class id and weight
                    if self._size == 0:
                        self._complete(b"")
                    else:
                        self._state, self._parts, self._received = BODY, [], 0
                elif kind == BODY:
                    if self._state != BODY:
                        raise ProtocolError("a body frame without its content header")
                    part = bytes(buf[start:end])
                    self._received += len(part)
                    if self._received == self._size and not self._parts:
                        self._complete(part)
                    else:
                        self._parts.append(part)
                        if self._received >= self._size:
                            self._complete(b"".join(self._parts))
                elif kind != HEARTBEAT:
                    raise ProtocolError(f"unknown frame type {kind}")
        finally:
            del buf[:pos]

    def _complete(self, body: bytes) -> None:
        self._state, self._parts = METHOD, []
        self._on_delivery(self._tag, body)


class Link(asyncio.Protocol):
    """One AMQP connection with one channel that consumes one queue."""

    def __init__(
        self,
        url: URL,
        inbox: deque[Delivery],
        wake: Callable[[], None],
        properties: FieldTable,
        ended: Callable[[Link], None],
    ) -> None:
        self._url = url
        self._inbox = inbox
        self._wake = wake
        self._ended = ended
        self._properties = properties
        self._reader = FrameReader(self._delivered, self._method)
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = self._loop.create_future()  # the AMQP handshake done
        self.lost: asyncio.Future[str] = self._loop.create_future()  # the connection ended (why)
        self._reply: asyncio.Future[Any] | None = None
        self._expect: type | tuple[type, ...] = ()
        self._calls = asyncio.Lock()
        self._closing: asyncio.Future[None] | None = None
        self._heartbeat = 0
        self._read_at = self._wrote_at = self._loop.time()
        self._ticker: asyncio.TimerHandle | None = None

    @property
    def is_closed(self) -> bool:
        return self.lost.done()

    # -- the socket

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._write(b"AMQP\x00\x00\x09\x01")

    def data_received(self, data: bytes) -> None:
        self._read_at = self._loop.time()
        try:
            self._reader.feed(data)
        except Exception as exc:  # ProtocolError, or a frame pamqp cannot read: this connection is done
            log.error("broker.stream_protocol_error", error=str(exc) or type(exc).__name__)
            self._end(f"protocol error: {exc}")
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end("connection lost" if exc is None else f"connection lost: {exc}")
        if self._closing is not None and not self._closing.done():
            self._closing.set_result(None)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self._wrote_at = self._loop.time()

    def _send(self, method: Any, channel: int = CHANNEL) -> None:
        self._write(pamqp.frame.marshal(method, channel))

    def _end(self, reason: str, *, refused: bool = False) -> None:
        if self.lost.done():
            return
        self.lost.set_result(reason)
        self._ended(self)
        if self._ticker is not None:
            self._ticker.cancel()
        for waiting in (self.opened, self._reply):
            if waiting is not None and not waiting.done():
                waiting.set_exception(Closed(reason, refused=refused))
                waiting.exception()  # retrieved: nobody may be waiting any more

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- frames

    def _delivered(self, tag: int, body: bytes) -> None:
        self._inbox.append((self, tag, body))
        self._wake()

    def _method(self, channel: int, method: Any) -> None:
        if isinstance(method, c.Connection.Start):
            mechanisms = method.mechanisms.split()
            if "PLAIN" not in mechanisms:
                self._end(f"the broker offers no PLAIN login ({method.mechanisms})")
                self.abort()
                return
            user, password = self._url.user or "guest", self._url.password or "guest"
            self._send(
                c.Connection.StartOk(
                    client_properties=self._properties, mechanism="PLAIN", response=f"\x00{user}\x00{password}"
                ),
                0,
            )
        elif isinstance(method, c.Connection.Tune):
            wanted = int(self._url.query.get("heartbeat", "60"))
            # the smaller of the two, or whichever is not 0 (0: no heartbeats)
            self._heartbeat = (
                min(wanted, method.heartbeat) if wanted and method.heartbeat else wanted or method.heartbeat
            )
            self._send(c.Connection.TuneOk(method.channel_max, method.frame_max, self._heartbeat), 0)
            vhost = self._url.path[1:].replace("%2F", "/") or "/"
            self._send(c.Connection.Open(virtual_host=vhost), 0)
        elif isinstance(method, c.Connection.OpenOk):
            if self._heartbeat:
                self._ticker = self._loop.call_later(self._heartbeat / 2, self._tick)
            if not self.opened.done():
                self.opened.set_result(None)
        elif isinstance(method, c.Connection.Close):
            self._send(c.Connection.CloseOk(), 0)
            self._end(f"connection closed by the broker: {method.reply_code} {method.reply_text}")
            self._close_transport()
        elif isinstance(method, c.Connection.CloseOk):
            self._close_transport()
        elif isinstance(method, c.Channel.Close):
            # the queue is this connection's own: a fresh connection starts over, under a new name
            self._send(c.Channel.CloseOk(), channel)
            self._end(f"channel closed by the broker: {method.reply_code} {method.reply_text}", refused=True)
            self._close_transport()
        elif isinstance(method, c.Basic.Cancel):
            self._end("consumer cancelled by the broker (queue deleted)")
            self._close_transport()
        elif isinstance(method, (c.Connection.Blocked, c.Connection.Unblocked)):
            log.info("broker.stream_flow", blocked=isinstance(method, c.Connection.Blocked))
        elif self._reply is not None and isinstance(method, self._expect):
            reply, self._reply = self._reply, None
            if not reply.done():
                reply.set_result(method)
        else:
            log.warning("broker.stream_unexpected_frame", frame=method.name)

    def _close_transport(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _tick(self) -> None:
        """Every half heartbeat: send one if nothing else went out; end a connection silent for 3 heartbeats."""
        now = self._loop.time()
        if now - self._read_at > 3 * self._heartbeat:
            log.warning("broker.stream_heartbeat_missed", silent_seconds=round(now - self._read_at, 1))
            self._end("heartbeats missed")
            self.abort()
            return
        if now - self._wrote_at >= self._heartbeat / 2:
            self._write(_HEARTBEAT)
        self._ticker = self._loop.call_later(self._heartbeat / 2, self._tick)

    # -- requests

    async def call(self, method: Any, expect: type | tuple[type, ...]) -> Any:
        """Send a synchronous method on the channel (0 for Channel.Open's own) and wait for its answer."""
        async with self._calls:
            if self.lost.done():
                raise Closed(self.lost.result())
            self._reply = self._loop.create_future()
            self._expect = expect
            self._send(method)
            return await self._reply

    def ack(self, tag: int) -> None:
        """Everything up to `tag` handled (`basic.ack multiple`): nothing is written if this link has ended."""
        if not self.lost.done():
            self._write(_ACK.pack(METHOD, CHANNEL, 13, 60, 80, tag, 1) + b"\xce")

    async def close(self) -> None:
        if self.lost.done() or self.transport is None:
            return
        self._closing = self._loop.create_future()
        self._send(c.Connection.Close(reply_code=200, reply_text="closing", class_id=0, method_id=0), 0)
        self._end("closed")
        try:
            await asyncio.wait_for(asyncio.shield(self._closing), CLOSE_WAIT_SECONDS)
        except TimeoutError:
            self.abort()


def ssl_context(url: URL) -> ssl.SSLContext | None:
    """For amqps://: aio-pika's (aiormq's) query parameters cafile, capath, cadata (base64 of DER certificates),
    certfile, keyfile, no_verify_ssl."""
    if url.scheme != "amqps":
        return None
    cadata = url.query.get("cadata")
    context = ssl.create_default_context(
        cafile=url.query.get("cafile"),
        capath=url.query.get("capath"),
        cadata=base64.b64decode(cadata) if cadata else None,
    )
    if url.query.get("certfile"):
        context.load_cert_chain(url.query["certfile"], url.query.get("keyfile"))
    if url.query.get("no_verify_ssl", "0") != "0":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class PrivateQueueStream:
    """An exclusive queue named `<base>.<token>` on a connection of its own, consumed in order into `inbox`;
    iterate `deliveries()`, and `ack` through each delivery's link."""

    def __init__(
        self,
        url: str,
        base: str,
        *,
        prefetch: int,
        connection_name: str,
        bindings: Iterable[tuple[str, str]] = (),
    ) -> None:
        self._urls = broker_urls(url)
        self._attempt = 0
        self.base = base
        self._prefetch = prefetch
        self._properties: FieldTable = {
            "connection_name": connection_name,
            "product": "relay",
            "capabilities": {"consumer_cancel_notify": True, "authentication_failure_close": True},
        }
        self._bindings: dict[tuple[str, str], None] = dict.fromkeys(bindings)  # (exchange, routing key), ordered
        self._interval = float(self._urls[0].query.get("reconnect_interval", "5"))
        self.name: str | None = None  # the current queue's name
        self.inbox: deque[Delivery] = deque()
        self._waiting: asyncio.Future[None] | None = None
        self._link: Link | None = None
        self._setup = asyncio.Lock()  # a connection's setup and every bind/unbind/declare, one at a time
        self._ready = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """Connected, with the queue declared, bound and consumed."""
        return self._ready.is_set()

    async def start(self) -> None:
        """Connect (trying each node once) and start consuming; raises if no node could be reached."""
        for left in range(len(self._urls) - 1, -1, -1):
            try:
                link = await self._open()
                break
            except OSError as exc:  # Closed and TimeoutError are OSErrors too
                if not left:
                    raise
                log.warning("broker.stream_connect_failed", base=self.base, error=str(exc))
        self._task = asyncio.create_task(self._supervise(link), name=f"relay-stream-{self.base}")

    async def _open(self) -> Link:
        url = self._urls[self._attempt % len(self._urls)]
        self._attempt += 1
        loop = asyncio.get_running_loop()
        link = Link(url, self.inbox, self._wake, self._properties, self._link_ended)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                context = ssl_context(url)
                await loop.create_connection(
                    lambda: link, url.host or "localhost", url.port or (5671 if context else 5672), ssl=context
                )
                await link.opened
                async with self._setup:
                    name = fresh_name(self.base)
                    await link.call(c.Channel.Open(), c.Channel.OpenOk)
                    await link.call(c.Basic.Qos(prefetch_count=self._prefetch), c.Basic.QosOk)
                    await link.call(c.Queue.Declare(queue=name, exclusive=True, auto_delete=True), c.Queue.DeclareOk)
                    for exchange, key in list(self._bindings):
                        await link.call(c.Queue.Bind(queue=name, exchange=exchange, routing_key=key), c.Queue.BindOk)
                    await link.call(c.Basic.Consume(queue=name, consumer_tag=name), c.Basic.ConsumeOk)
                    self.name, self._link = name, link
                    self._ready.set()
        except BaseException:
            link.abort()
            raise
        log.info("broker.stream_consuming", queue=name, node=f"{url.host}:{url.port}")
        return link

    async def _supervise(self, link: Link) -> None:
        while True:
            reason = await asyncio.shield(link.lost)  # cancelling this task must not cancel the link's future
            self._ready.clear()
            self._link = None
            if self._closing:
                return
            log.warning("broker.stream_lost", queue=self.name, reason=reason)
            while True:
                await asyncio.sleep(self._interval)
                try:
                    link = await self._open()
                    break
                except OSError as exc:  # Closed and TimeoutError are OSErrors too
                    log.warning("broker.stream_reconnect_failed", base=self.base, error=str(exc) or type(exc).__name__)

    def _link_ended(self, link: Link) -> None:
        if link is self._link:
            self._ready.clear()  # at once: `ready` and `restored()` must not see the ended link as ready

    def _wake(self) -> None:
        waiting = self._waiting
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """Every delivery in the order received, across reconnects, until `close`."""
        loop = asyncio.get_running_loop()
        inbox = self.inbox
        while not self._closing:
            while inbox:
                yield inbox.popleft()
            self._waiting = loop.create_future()
            await self._waiting
            self._waiting = None

    async def bind(self, *bindings: tuple[str, str]) -> None:
        """Route these (exchange, routing key) to the queue, now and after every reconnect. While the stream is
        reconnecting they are kept and bound with the others when its queue is declared again. A binding the
        broker refuses (its exchange does not exist) is not kept: `Closed` is raised, and the connection, which
        the refusal ended, comes back without it."""
        self._bindings.update(dict.fromkeys(bindings))
        await self._apply(c.Queue.Bind, c.Queue.BindOk, bindings)

    async def unbind(self, *bindings: tuple[str, str]) -> None:
        for binding in bindings:
            self._bindings.pop(binding, None)
        await self._apply(c.Queue.Unbind, c.Queue.UnbindOk, bindings)

    async def _apply(self, method: type, expect: type, bindings: tuple[tuple[str, str], ...]) -> None:
        async with self._setup:
            link, name = self._link, self.name
            if link is None or link.is_closed or name is None:
                return  # the next connection declares the queue with the bindings it holds then
            for done, (exchange, key) in enumerate(bindings):
                try:
                    await link.call(method(queue=name, exchange=exchange, routing_key=key), expect)
                except Closed as exc:
                    if exc.refused and method is c.Queue.Bind:
                        for refused in bindings[done:]:
                            self._bindings.pop(refused, None)
                        raise
                    return  # lost meanwhile: the next connection binds what is held

    @property
    def bindings(self) -> list[tuple[str, str]]:
        return list(self._bindings)

    async def message_count(self) -> int | None:
        """Messages ready in the queue (not yet sent to this consumer), or None while reconnecting."""
        async with self._setup:
            link, name = self._link, self.name
            if link is None or name is None:
                return None
            with contextlib.suppress(Closed):
                declared = await link.call(c.Queue.Declare(queue=name, passive=True), c.Queue.DeclareOk)
                return int(declared.message_count)
            return None

    async def restored(self) -> None:
        """Wait (up to RESTORE_WAIT_SECONDS) while a reconnect declares, binds and consumes the queue again."""
        if self.ready or self._closing:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), RESTORE_WAIT_SECONDS)

    async def close(self) -> None:
        self._closing = True
        self._wake()
        link, self._link = self._link, None
        self._ready.clear()
        if link is not None:
            await link.close()
        if self._task is not None:  # waiting to reconnect, or in the middle of it (that link is aborted)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
