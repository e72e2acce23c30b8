"""RabbitMQ for Relay: topology, confirmed publishing, consumers, request/reply over aio-pika; a gateway's event
queue on a lean connection of its own (queue_stream)."""

from relay_broker.broker import Broker, Topology
from relay_broker.commands import CommandHandler, serve_commands
from relay_broker.lane_consumer import LaneConsumer
from relay_broker.rpc import RpcClient

__all__ = ["Broker", "CommandHandler", "LaneConsumer", "RpcClient", "Topology", "serve_commands"]
