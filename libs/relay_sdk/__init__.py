"""A small Python client for Relay: REST calls and Socket.IO sockets, for services and tests."""

from relay_sdk.client import RelayClient, RelayError, RelaySocket, RelaySocketError
from relay_sdk.emit import Emitter, emit
from relay_sdk.follow import ChatFollower

__all__ = ["ChatFollower", "Emitter", "RelayClient", "RelayError", "RelaySocket", "RelaySocketError", "emit"]
