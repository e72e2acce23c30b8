"""A small Python client for Relay: REST calls and Socket.IO sockets, for services and tests."""

from relay_sdk.client import RelayClient, RelaySocket
from relay_sdk.emit import Emitter, emit

__all__ = ["Emitter", "RelayClient", "RelaySocket", "emit"]
