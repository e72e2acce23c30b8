"""uvicorn's sans-I/O WebSocket protocol, slimmed for many idle connections (measured with tracemalloc,
`python -m bench.conn_memory`): a lean receive queue and writable event (see leanqueue), and once the
connection is accepted the handshake's request, response and ASGI scope are let go — Engine.IO
has copied what it needs into its environ by then.

An application that owns the connection's reads can also `detach` it: its ASGI call returns while the
connection stays open, and every message received from then on is handed to a receiver, in order, by a
task that runs only while messages wait. An idle connection then holds no task and no suspended chain of
ASGI coroutines (~4 KB per socket, measured), only this protocol object and what the application keeps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import OPEN, Protocol

from relay_gateway.leanqueue import LeanEvent, LeanQueue

# a message, or None once the connection is gone (delivered once, last)
Receiver = Callable[[str | bytes | None], Awaitable[None]]
# messages that may wait for a detached connection's receiver before its reads pause (TCP pushes back)
INBOX_LIMIT = 16


class RelayWebSocketProtocol(WebSocketsSansIOProtocol):
    # uvicorn's protocol sets 37 attributes: past 30, CPython gives up its compact per-class attribute
    # storage for a full dict (~1.6 KB); as slots they cost 8 bytes each. An attribute a later uvicorn
    # adds still works (it lands in the instance dict).
    __slots__ = (
        "app", "app_state", "asgi_version", "client", "close_sent", "close_timeout", "close_timer", "config",
        "conn", "connections", "curr_msg_data_type", "default_headers", "disconnected", "frames",
        "handshake_complete", "handshake_initiated", "inbox", "initial_response", "last_ping_rtt", "logger",
        "loop", "pending_ping_payload", "ping_interval", "ping_sent_at", "ping_timeout", "ping_timer",
        "pong_timer", "queue", "read_paused", "receiver", "request", "response", "root_path", "scheme", "scope",
        "server", "tasks", "transport", "writable",
    )  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = LeanQueue()  # type: ignore[assignment]
        self.writable = LeanEvent()  # type: ignore[assignment]
        self.writable.set()
        self.receiver: Receiver | None = None
        self.inbox: list[str | bytes | None] | None = None  # not None while a task hands messages over

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]
            # the application read its scope when the request came; a WebSocket's later messages never do
            scope = cast(dict[str, Any], self.scope)
            kept = {"type": scope["type"], "path": scope["path"]}
            scope.clear()
            scope.update(kept)
            self._restart_frame_parser()

    def _restart_frame_parser(self) -> None:
        """websockets' server parser is one generator that parses the request and then every frame, so
        its frame keeps the parsed request (headers and all, ~2.3 KB) for the connection's life. Once
        open, with nothing of the client's read yet (a client sends no frame before the 101), a fresh
        frame parser takes over: the same parser the base protocol runs after any handshake."""
        conn = self.conn
        if conn.state is not OPEN or conn.reader.buffer or conn.events:
            return
        parser = Protocol.parse(conn)
        next(parser)
        conn.parser = parser

    # -- detached reads

    def detach(self, receiver: Receiver) -> None:
        """From now on `receiver` gets every message of this accepted connection (and None once it is
        gone), and the ASGI call may return without closing it. Messages already queued for the ASGI
        `receive` go first, in order."""
        self.receiver = receiver
        queue = self.queue
        while not queue.empty():
            message = queue.get_nowait()
            if message["type"] != "websocket.receive":  # websocket.disconnect: connection_lost says it
                break
            text = message.get("text")
            self._deliver(text if text is not None else message.get("bytes"))
        if self.disconnected:
            self._deliver(None)
        elif self.read_paused and self.inbox is None:
            self.read_paused = False
            self.transport.resume_reading()

    def send_receive_event_to_app(self) -> None:
        if self.receiver is None:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return  # as uvicorn: past our close, reads stay on until the peer's close reply
        if self.curr_msg_data_type == "text":
            try:
                self._deliver(data.decode())
            except UnicodeDecodeError:
                self.logger.info("Invalid UTF-8 sequence received from client.")
                self.conn.send_close(1007)
                self.handle_parser_exception()
        else:
            self._deliver(data)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.receiver is not None:
            self._deliver(None)

    def _deliver(self, data: str | bytes | None) -> None:
        inbox = self.inbox
        if inbox is not None:
            inbox.append(data)
            if len(inbox) >= INBOX_LIMIT and not self.read_paused and not self.disconnected:
                self.read_paused = True
                self.transport.pause_reading()
            return
        self.inbox = [data]
        task = self.loop.create_task(self._hand_over())
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)  # a server shutting down waits for it, as for an ASGI call

    async def _hand_over(self) -> None:
        inbox = cast(list[str | bytes | None], self.inbox)
        receiver = cast(Receiver, self.receiver)
        index = 0
        try:
            while index < len(inbox):
                data = inbox[index]
                inbox[index] = None
                index += 1
                try:
                    await receiver(data)
                except Exception:
                    self.logger.exception("Exception in WebSocket receiver")
                if data is None:
                    self.receiver = None  # the receiver has heard the end: nothing follows
                    return
        finally:
            self.inbox = None
            if self.read_paused and not self.disconnected:
                self.read_paused = False
                self.transport.resume_reading()

    def close_detached(self, code: int = 1000) -> None:
        """Start the closing handshake of a detached connection (as the ASGI `websocket.close` does)."""
        if self.close_sent or self.transport.is_closing():
            return
        self.conn.send_close(code)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)

    async def run_asgi(self) -> None:
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if self.receiver is not None:
                return  # detached: the connection lives on with its receiver
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None:
            self.transport.close()
