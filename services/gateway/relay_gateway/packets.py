"""Malformed Socket.IO packets: answered with an `error` event, logged as one throttled line, never a
wedged socket.

python-socketio raises from deep inside its dispatch for a packet it cannot use (`42[]`, `42[123,{}]`,
truncated JSON) and its Engine.IO layer logs each with a traceback; a binary packet whose placeholders
name attachments that never come leaves the socket waiting for them forever. This server checks a
packet's shape before dispatching it and bounds what a packet may declare.
"""

from __future__ import annotations

import time
from typing import Any

import engineio
import socketio
from relay_contracts import ErrorCode
from relay_log import get_logger
from socketio import packet as sio_packet

from relay_gateway.admission import AdmissionGate

log = get_logger(__name__)

MAX_ATTACHMENTS = 4  # binary parts one packet may carry (each is bounded by MAX_FRAME_BYTES)
MAX_EVENT_NAME = 128


class MalformedPacket(ValueError):
    """A packet the client should not have sent; its message goes back to the client."""


def _placeholders(data: Any) -> list[Any]:
    found, pending = [], [data]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if item.get("_placeholder") is True:
                found.append(item.get("num"))
            else:
                pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


class GuardedPacket(sio_packet.Packet):  # type: ignore[misc]
    """A packet that refuses to declare more attachments than allowed, or placeholders it cannot fill."""

    def decode(self, encoded_packet: str | bytes) -> int:
        count = int(super().decode(encoded_packet) or 0)
        if count > MAX_ATTACHMENTS:
            raise MalformedPacket(f"at most {MAX_ATTACHMENTS} binary attachments per packet")
        if self.packet_type in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
            nums = _placeholders(self.data)
            if count == 0 or any(isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < count for n in nums):
                raise MalformedPacket("binary placeholders must name the packet's own attachments")
        return count


def namespace_of(raw: Any) -> str:
    """The namespace a (maybe undecodable) text packet names: `2/chat,[...]` → `/chat`."""
    if not isinstance(raw, str):
        return "/"
    rest = raw[1:]
    dash = rest.find("-")
    if dash > 0 and rest[:dash].isdigit():
        rest = rest[dash + 1 :]
    if not rest.startswith("/"):
        return "/"
    end = min((i for i in (rest.find(","), rest.find("?")) if i >= 0), default=len(rest))
    return rest[:end][:64]


class Throttle:
    """At most one log line per `seconds`; the lines in between are counted, not written."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds
        self._last = 0.0
        self.suppressed = 0

    def allow(self) -> bool:
        now = time.monotonic()
        if now - self._last < self.seconds:
            self.suppressed += 1
            return False
        self._last = now
        return True


class PacedEngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """Engine.IO's handshake (a new sid, the OPEN packet, the WebSocket accept) waits for an admission."""

    admission = AdmissionGate(0)  # GuardedServer sets its own

    async def _handle_connect(self, environ: dict[str, Any], transport: str, jsonp_index: int | None = None) -> Any:
        await self.admission.admit()
        return await super()._handle_connect(environ, transport, jsonp_index)


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]
    def __init__(self, *, admission: AdmissionGate | None = None, **kwargs: Any) -> None:
        super().__init__(serializer=GuardedPacket, **kwargs)
        # new connections' handshake work, at most K per loop pass (admission.py): the Engine.IO handshake and
        # each namespace connect take one admission each
        self.admission = admission or AdmissionGate(0)
        self.eio.admission = self.admission
        self._malformed_log = Throttle()
        # (namespace, event) whose handlers only answer, waiting for no I/O (ping, health-check): run in the
        # socket's read step instead of a task of their own, so under a burst their ack does not also wait
        # for the task's turn, a loop pass later (SocketRouter.on(..., inline=True))
        self.inline_events: set[tuple[str, str]] = set()

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return PacedEngineServer

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        await self.admission.admit()
        await super()._handle_connect(eio_sid, namespace, data)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        pending = self._binary_packet.get(eio_sid)
        if pending is not None and isinstance(data, str):
            # a text packet while attachments are due: the client gave up on the binary packet
            del self._binary_packet[eio_sid]
            await self._refuse(eio_sid, pending.namespace or "/", "binary packet abandoned before its attachments")
        try:
            await super()._handle_eio_message(eio_sid, data)
        except Exception as exc:
            self._binary_packet.pop(eio_sid, None)
            binary = pending is not None and not isinstance(data, str)
            namespace = (pending.namespace or "/") if binary and pending is not None else namespace_of(data)
            await self._refuse(eio_sid, namespace, f"malformed packet: {exc}"[:200])

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        if not (isinstance(data, list) and data and isinstance(data[0], str) and 0 < len(data[0]) <= MAX_EVENT_NAME):
            raise MalformedPacket("an event is a JSON array whose first element is the event's name")
        namespace = namespace or "/"
        if (namespace, data[0]) not in self.inline_events:
            await super()._handle_event(eio_sid, namespace, id, data)
            return
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if self.manager.is_connected(sid, namespace):
            await self._handle_event_internal(self, sid, eio_sid, data, namespace, id)

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: Any, namespace: str, id: int | None
    ) -> None:
        await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)
        # the handler's answers (its ack, its replies) leave now, not on the loop's next pass: under a
        # burst every pass is long, and a reply that waits for one more is that much later
        socket = self.eio.sockets.get(eio_sid)
        writer = getattr(socket, "writer", None)
        if writer is not None:
            writer.flush()

    async def _handle_ack(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        if id is None or not isinstance(data, list):
            raise MalformedPacket("an ack names the id of the event it answers and carries a JSON array")
        await super()._handle_ack(eio_sid, namespace, id, data)

    async def _refuse(self, eio_sid: str, namespace: str, message: str) -> None:
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if self._malformed_log.allow():
            log.warning(
                "socket.malformed_packet",
                sid=sid,
                namespace=namespace,
                reason=message,
                suppressed=self._malformed_log.suppressed,
            )
            self._malformed_log.suppressed = 0
        if sid is not None:
            body = {"code": ErrorCode.VALIDATION_ERROR.value, "message": message}
            await self.emit("error", body, to=sid, namespace=namespace)
