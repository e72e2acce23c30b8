"""uvicorn's sans-I/O WebSocket protocol, slimmed for many idle connections (measured with tracemalloc):
a lean receive queue (see leanqueue), and the handshake's request, response and raw scope headers let go
once the connection is accepted — Engine.IO has copied what it needs into its environ by then."""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from relay_gateway.leanqueue import LeanQueue


class RelayWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = LeanQueue()  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]
            self.scope["headers"] = []
