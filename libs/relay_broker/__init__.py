"""RabbitMQ for Relay over aio-pika: topology, confirmed publishing, consumers, request/reply."""

from relay_broker.broker import Broker, Topology
from relay_broker.commands import CommandConsumer, CommandHandler, serve_commands
from relay_broker.rpc import RpcClient

__all__ = ["Broker", "CommandConsumer", "CommandHandler", "RpcClient", "Topology", "serve_commands"]
