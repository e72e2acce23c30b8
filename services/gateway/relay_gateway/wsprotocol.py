"""uvicorn's sans-I/O WebSocket protocol, slimmed for many idle connections (measured with tracemalloc,
`python -m bench.conn_memory`): a lean receive queue and writable event (see leanqueue), and once the
connection is accepted the handshake's request, response and ASGI scope are let go — Engine.IO
has copied what it needs into its environ by then."""

from __future__ import annotations

from typing import Any, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import OPEN, Protocol

from relay_gateway.leanqueue import LeanEvent, LeanQueue


class RelayWebSocketProtocol(WebSocketsSansIOProtocol):
    # uvicorn's protocol sets 37 attributes: past 30, CPython gives up its compact per-class attribute
    # storage for a full dict (~1.6 KB); as slots they cost 8 bytes each. An attribute a later uvicorn
    # adds still works (it lands in the instance dict).
    __slots__ = (
        "app", "app_state", "asgi_version", "client", "close_sent", "close_timeout", "close_timer", "config",
        "conn", "connections", "curr_msg_data_type", "default_headers", "disconnected", "frames",
        "handshake_complete", "handshake_initiated", "initial_response", "last_ping_rtt", "logger", "loop",
        "pending_ping_payload", "ping_interval", "ping_sent_at", "ping_timeout", "ping_timer", "pong_timer",
        "queue", "read_paused", "request", "response", "root_path", "scheme", "scope", "server", "tasks",
        "transport", "writable",
    )  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = LeanQueue()  # type: ignore[assignment]
        self.writable = LeanEvent()  # type: ignore[assignment]
        self.writable.set()

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
