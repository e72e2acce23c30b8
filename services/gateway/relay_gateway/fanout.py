"""The WebSocket write path under Engine.IO: pre-built frames written straight to each socket's transport.

Engine.IO's own WebSocket path costs a task wake-up, a timed queue wait, an ASGI message and a framing call
per packet per socket. Once a socket has upgraded to an uncompressed WebSocket on Relay's WebSocket protocol
(wsprotocol: uvicorn's `websockets-sansio`, slimmed), `DirectSocket` replaces that with a `FrameWriter`: every
packet for the socket (room emits, acks, pings, the CLOSE packet) goes through it, so per-socket order is the
order of writes; nothing is queued elsewhere once it is on. Frames written in one loop tick go out in one
`transport.write` per socket, at the latest on the loop's next pass; answers leave sooner, when the step that
wrote them ends (a handler's ack and replies, a connect's answers, a drained event batch), because under a
burst every pass is long and a reply that waits for one more is that much later. A socket whose unsent bytes
pass `limit` is a slow consumer: it is disconnected with a logged reason and counted, never left to grow
memory.

Reads go the other way round: the socket detaches the connection from its ASGI call (wsprotocol), and each
received message comes to `DirectSocket._received` in order, from a task that lives only while messages
wait. An idle socket holds no task, no reader and no suspended ASGI coroutines.

Polling sockets, sockets that negotiated permessage-deflate, and other WebSocket protocols keep Engine.IO's
path unchanged (`DirectSocket.writer` stays None).
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
from typing import Any

import engineio
import socketio
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from relay_log import get_logger
from socketio import packet as sio_packet

from relay_gateway import metrics
from relay_gateway.deadlines import Deadlines
from relay_gateway.tasks import TaskSet
from relay_gateway.wsprotocol import RelayWebSocketProtocol

log = get_logger(__name__)

TEXT, BINARY = 0x1, 0x2
# python-socketio's packet JSON (`json.dumps(data, separators=(",", ":"))`, the same defaults) from one C encoder
# made once: `json.dumps` makes a JSONEncoder and a C encoder on every call. Without the circular check (a markers
# dict would outlive an error midway): circular data ends in RecursionError, and python-socketio's packet takes it
_C_ENCODER = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, json.JSONEncoder().default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
)


def _compact_json(data: Any) -> str:
    return "".join(_C_ENCODER(data, 0))

_BACKGROUND = TaskSet()  # pings to polling sockets, heartbeat closes: kept until done


def ws_frame(pkt: eio_packet.Packet) -> bytes:
    """One unmasked, unfragmented server->client WebSocket frame carrying an Engine.IO packet."""
    encoded = pkt.encode()
    if isinstance(encoded, str):
        payload, opcode = encoded.encode(), TEXT
    else:
        payload, opcode = bytes(encoded), BINARY
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


class Flusher:
    """Writes every dirty writer's pending frames once per loop tick.

    `direct` is on while an event is handled with nothing queued behind it (the delivery loop sets it): no
    later frame could share a write with this one, so a writer with nothing pending writes it at once
    instead of keeping it for the flush; one with frames pending still queues it behind them."""

    def __init__(self) -> None:
        self._dirty: list[FrameWriter] = []
        self._scheduled = False
        self.direct = False

    def mark(self, writer: FrameWriter) -> None:
        self._dirty.append(writer)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        self._scheduled = False
        for writer in dirty:
            writer.flush()


FLUSHER = Flusher()
# every socket's next ping or pong deadline (Engine.IO's heartbeat), one sweep a second
HEARTBEAT: Deadlines[DirectSocket] = Deadlines(lambda socket: socket._heartbeat(), clock=time.monotonic)


class FrameWriter:
    __slots__ = ("_pending", "limit", "overflowed", "protocol", "sid", "transport")

    def __init__(self, protocol: RelayWebSocketProtocol, limit: int, sid: str) -> None:
        self.protocol = protocol
        self.transport = protocol.transport
        self.limit = limit
        self.sid = sid
        self._pending: list[bytes] | None = None
        self.overflowed = False

    def write(self, frame: bytes) -> None:
        pending = self._pending
        if pending is not None:
            pending.append(frame)
        elif FLUSHER.direct:
            self._send(frame)
        else:
            self._pending = [frame]
            FLUSHER.mark(self)

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending:
            self._send(pending[0] if len(pending) == 1 else b"".join(pending))

    def _send(self, data: bytes) -> None:
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(data)
        buffered = transport.get_write_buffer_size()
        if buffered > self.limit and not self.overflowed:
            # a slow or stuck client: drop it rather than buffer without bound or slow the others
            self.overflowed = True
            metrics.SLOW_CONSUMERS.inc()
            log.warning(
                "socket.slow_consumer_disconnected", eio_sid=self.sid, buffered_bytes=buffered, limit=self.limit
            )
            transport.abort()


def frame_writer_for(ws: Any, limit: int, sid: str) -> FrameWriter | None:
    """A writer for an accepted ASGI WebSocket, or None where the fast path does not apply."""
    protocol = getattr(getattr(ws, "asgi_send", None), "__self__", None)
    if not isinstance(protocol, RelayWebSocketProtocol):
        return None
    if protocol.conn.extensions:  # permessage-deflate: frames must be compressed per socket
        return None
    return FrameWriter(protocol, limit, sid)


class DirectSocket(engineio.async_socket.AsyncSocket):  # type: ignore[misc]
    """An Engine.IO socket that writes frames itself once it runs on a plain WebSocket."""

    writer: FrameWriter | None = None
    # set by AsyncSocket (untyped)
    connected: bool
    last_ping: float | None

    async def send(self, pkt: eio_packet.Packet) -> None:
        writer = self.writer
        if writer is None:
            await super().send(pkt)
            return
        if not await self.check_ping_timeout():
            return
        writer.write(ws_frame(pkt))
        if pkt.packet_type == eio_packet.CLOSE:
            # the client closes on this packet; make sure the frame leaves before the transport does
            writer.flush()

    def schedule_ping(self) -> None:
        # the next ping a ping interval after the pong (as Engine.IO does), on the shared heartbeat
        # instead of a task sleeping through each interval
        if self.last_ping:
            self.last_ping = None
            HEARTBEAT.set_in(self, self.server.ping_interval)

    def _heartbeat(self) -> None:
        """The socket's heartbeat deadline: send the next ping, or end a socket that went quiet."""
        writer = self.writer
        if self.closed:
            # closed by the server but the client keeps the connection open: end it
            if writer is not None:
                writer.transport.abort()
            return
        if self.closing:
            return
        if self.last_ping:  # no pong within the ping timeout: the client is gone
            self.server.logger.info("%s: Client is gone, closing socket", self.sid)
            _BACKGROUND.spawn(self._end(self.server.reason.PING_TIMEOUT))
            return
        self.last_ping = time.time()
        HEARTBEAT.set_in(self, self.server.ping_timeout)
        ping = eio_packet.Packet(eio_packet.PING)
        if writer is not None:
            writer.write(ws_frame(ping))
        else:
            _BACKGROUND.spawn(self.send(ping))

    async def _end(self, reason: Any) -> None:
        # the CLOSE packet updates a half-open client; the transport goes either way
        await self.close(wait=False, abort=False, reason=reason)
        writer = self.writer
        if writer is not None:
            writer.flush()
            writer.transport.abort()

    async def _websocket_handler(self, ws: Any) -> None:
        writer = frame_writer_for(ws, self.server.sockets.send_buffer_limit, self.sid)
        if writer is None:
            await super()._websocket_handler(ws)
            return
        if not await self._upgrade_handshake(ws):
            return
        # whatever was queued before (polling, or during the upgrade) goes first, in order
        while not self.queue.empty():
            pkt = self.queue.get_nowait()
            self.queue.task_done()
            if pkt is not None:
                writer.write(ws_frame(pkt))
        writer.flush()  # the OPEN packet of a fresh WebSocket leaves now, not a loop pass later
        self.writer = writer
        self.server.logger.info("%s: Upgrade to websocket successful", self.sid)
        # the connection's reads come to `_received` from now on, and the ASGI call returns: an idle socket
        # holds no task and no chain of suspended coroutines
        writer.protocol.detach(self._received)

    async def _received(self, data: str | bytes | None) -> None:
        """The next message of a detached WebSocket, in order; None once the connection is gone."""
        writer = self.writer
        if writer is None:  # ended already
            return
        if data is None:
            await self._ended(writer)
            return
        if len(data) > self.server.max_http_buffer_size:
            await self._ended(writer)
            writer.protocol.close_detached(1009)
            return
        try:
            await self.receive(eio_packet.Packet(encoded_packet=data))
        except eio_exceptions.UnknownPacketError:
            pass
        except eio_exceptions.SocketIsClosedError:
            await self._ended(writer)
            writer.protocol.close_detached()
            return
        except Exception:
            self.server.logger.exception("Unknown receive error")
        writer.flush()  # what handling the packet wrote (a connect's answers) leaves now

    async def _ended(self, writer: FrameWriter) -> None:
        """The WebSocket is gone or given up: no more direct writes, and Engine.IO hears of it."""
        HEARTBEAT.discard(self)
        self.writer = None
        writer.flush()
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async def _upgrade_handshake(self, ws: Any) -> bool:
        """Engine.IO's probe/upgrade exchange (as in AsyncSocket._websocket_handler)."""
        if not self.connected:
            self.connected = True
            self.upgraded = True
            return True
        self.upgrading = True  # hold packet sends during the upgrade
        try:
            probe = eio_packet.Packet(encoded_packet=await self._wait(ws))
        except OSError:
            return False
        if probe.packet_type != eio_packet.PING or probe.data != "probe":
            self.upgrading = False
            return False
        await ws.send(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
        await self.queue.put(eio_packet.Packet(eio_packet.NOOP))  # end the pending poll
        try:
            upgrade = eio_packet.Packet(encoded_packet=await self._wait(ws))
        except OSError:
            self.upgrading = False
            return False
        self.upgrading = False
        if upgrade.packet_type != eio_packet.UPGRADE:
            self.upgraded = False
            return False
        self.upgraded = True
        return True

    async def _wait(self, ws: Any) -> Any:
        data = await ws.wait()
        if data and len(data) > self.server.max_http_buffer_size:
            raise ValueError("packet is too large")
        return data


class SocketTable(dict[str, Any]):
    """engineio.AsyncServer.sockets: every socket stored in it becomes a DirectSocket."""

    def __init__(self, send_buffer_limit: int) -> None:
        super().__init__()
        self.send_buffer_limit = send_buffer_limit

    def __setitem__(self, sid: str, socket: Any) -> None:
        if type(socket) is engineio.async_socket.AsyncSocket:
            socket.__class__ = DirectSocket
        super().__setitem__(sid, socket)


class FanoutEmit(socketio.AsyncManager):  # type: ignore[misc]
    """A room emit encodes its packet and frame once and writes the same bytes to each direct socket,
    without a task per recipient; other sockets (polling, compressed) take Engine.IO's path in turn."""

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        if callback is not None or namespace not in self.rooms:
            # an ack needs a packet per recipient (its own ack id): python-socketio's path
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs)
            return
        if isinstance(data, tuple):
            args = [event, *data]
        elif data is not None:
            args = [event, data]
        else:
            args = [event]
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        encoded = self._event_text(namespace, args)
        if encoded is None:
            encoded = self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=args).encode()
        eio_pkts = [
            eio_packet.Packet(eio_packet.MESSAGE, p) for p in (encoded if isinstance(encoded, list) else [encoded])
        ]
        frames = [ws_frame(p) for p in eio_pkts]
        single = frames[0] if len(frames) == 1 else None
        sockets = self.server.eio.sockets
        slow_path: list[str] = []
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            socket = sockets.get(eio_sid)
            writer = getattr(socket, "writer", None)
            if writer is None or socket.closed:
                slow_path.append(eio_sid)
            elif single is not None:
                writer.write(single)
            else:
                for frame in frames:
                    writer.write(frame)
        for eio_sid in slow_path:
            for p in eio_pkts:
                await self.server._send_eio_packet(eio_sid, p)

    def _event_text(self, namespace: str, data: list[Any]) -> str | None:
        """The EVENT packet python-socketio's `Packet(EVENT, ...).encode()` makes, in one pass of the C encoder;
        None for data JSON cannot carry as it is (bytes: a BINARY_EVENT with attachments) or another packet class.

        Packet's constructor walks the data for bytes in Python, then `json.dumps` with `separators` builds a new
        encoder per call (~7 µs an event, against ~2): at one socket per event that was the largest piece of an
        event's Python after the write (bench/reports/fanout.md, stop 21)."""
        if self.server.packet_class is not sio_packet.Packet or sio_packet.Packet.json.dumps is not json.dumps:
            return None
        try:
            text = _compact_json(data)
        except (TypeError, ValueError, RecursionError):
            return None
        return f"{sio_packet.EVENT}{text}" if namespace == "/" else f"{sio_packet.EVENT}{namespace},{text}"
