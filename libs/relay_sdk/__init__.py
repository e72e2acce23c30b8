"""A small Python client for Relay: REST calls and Socket.IO sockets, for services and tests."""

from relay_sdk.client import RelayClient, RelaySocket

__all__ = ["RelayClient", "RelaySocket"]
