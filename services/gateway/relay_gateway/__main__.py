"""Run one gateway replica: `python -m relay_gateway` (GATEWAY_PORT, REPLICA_ID, ...)."""

from __future__ import annotations

import uvicorn
from relay_config import load_settings
from relay_log import configure_logging
from relay_ops import run_process
from relay_ops.shutdown import GracefulServer

from relay_gateway.bootstrap import build
from relay_gateway.settings import GatewaySettings
from relay_gateway.wsprotocol import RelayWebSocketProtocol


async def run() -> None:
    settings = load_settings(GatewaySettings)
    configure_logging("gateway", settings.log_level, settings.log_format)
    app = build(settings)
    await app.start()
    config = uvicorn.Config(
        app.asgi,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level="warning",
        lifespan="off",
        # the fan-out fast path writes frames on this protocol's transport (relay_gateway.fanout)
        ws=RelayWebSocketProtocol,
        ws_ping_interval=None,  # Engine.IO's own heartbeat keeps connections alive and detects dead ones
        ws_per_message_deflate=settings.ws_permessage_deflate,
        ws_max_size=max(settings.max_frame_bytes, settings.max_packet_bytes) + 1024,
        timeout_graceful_shutdown=5,
        access_log=False,
    )
    try:
        await GracefulServer(config, drain=app.drain).serve()
    finally:
        await app.close()


if __name__ == "__main__":
    run_process(run)
