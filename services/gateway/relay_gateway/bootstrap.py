"""Builds the gateway: Socket.IO server with the Redis manager, broker, REST app. Nothing else constructs adapters."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import relay_redis
import socketio
from redis.exceptions import RedisError
from relay_auth import AuthError, TokenVerifier
from relay_broker import Broker, RpcClient, Topology
from relay_contracts import RelayError
from relay_log import get_logger
from relay_ops import ops_routes
from relay_redis.claims import RedisClaims
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from relay_gateway import dialects
from relay_gateway.adapter import ObservableRedisManager
from relay_gateway.admission import AdmissionGate
from relay_gateway.commands import CommandBus
from relay_gateway.context import Gateway
from relay_gateway.delivery import ACK_BATCH, EventDelivery
from relay_gateway.drain import drain_sockets
from relay_gateway.fanout import SocketTable
from relay_gateway.features import FEATURES
from relay_gateway.identity import Authenticator
from relay_gateway.leanqueue import LeanQueue
from relay_gateway.packets import GuardedServer
from relay_gateway.ratelimit import RateLimiter, parse_limits
from relay_gateway.rest.edge import (
    CorrelationMiddleware,
    auth_error_handler,
    redis_down_handler,
    relay_error_handler,
    unexpected_error_handler,
)
from relay_gateway.sessions import SessionStore
from relay_gateway.settings import GatewaySettings
from relay_gateway.sockets import lifecycle
from relay_gateway.sockets.router import SocketRouter

log = get_logger(__name__)

DIALECTS = dialects.merge(*(f.table for f in FEATURES))
NAMESPACES = tuple(dict.fromkeys(ns for f in FEATURES for ns in f.namespaces))
LISTENER_CHECK_SECONDS = 2.0


@dataclass
class GatewayApp:
    gw: Gateway
    broker: Broker
    manager: ObservableRedisManager
    rpc: RpcClient
    asgi: socketio.ASGIApp
    router: SocketRouter | None = None
    draining: bool = False
    _watchdog: asyncio.Task[None] | None = None
    _background: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        await self.broker.connect()
        await self.rpc.start()
        await self.gw.delivery.start()
        # start the Redis listener now, not at the first connection, so readiness means it is subscribed
        self.gw.sio.manager_initialized = True
        self.manager.initialize()
        self._watchdog = asyncio.create_task(self._watch_listener(), name="relay-redis-listener-watchdog")
        self._background = [asyncio.create_task(job(self.gw)) for job in self.gw.on_start]
        log.info("gateway.started", replica=self.gw.settings.replica_id, port=self.gw.settings.gateway_port)

    def listener_alive(self) -> bool:
        """The adapter's listener task runs and its Redis subscription is live right now."""
        thread = getattr(self.manager, "thread", None)
        return thread is not None and not thread.done() and self.manager.subscribed

    async def _watch_listener(self) -> None:
        # python-socketio's pub/sub listener can die silently; restart it rather than go deaf
        while True:
            await asyncio.sleep(LISTENER_CHECK_SECONDS)
            thread = getattr(self.manager, "thread", None)
            if thread is not None and thread.done():  # a retrying listener is alive: leave it be
                log.error("gateway.redis_listener_died_restarting")
                self.manager.thread = self.gw.sio.start_background_task(self.manager._thread)

    async def ready(self) -> dict[str, bool]:
        try:
            redis_ok = bool(await self.gw.redis.ping())
        except Exception:
            redis_ok = False
        return {
            "serving": not self.draining,
            "broker": self.broker.is_connected,
            "redis": redis_ok,
            "redis_listener": self.listener_alive(),
            "event_consumer": self.gw.delivery.alive,
        }

    async def drain(self) -> None:
        """SIGTERM: unready at once, then the sockets' transports closed in staggered batches."""
        self.draining = True
        await drain_sockets(self.gw.sio.eio, self.gw.settings.gateway_drain_seconds)

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        for task in self._background:
            task.cancel()
        await self.gw.delivery.close()
        await self.broker.close()
        await self.gw.redis.aclose()


def build(settings: GatewaySettings) -> GatewayApp:
    manager = ObservableRedisManager(settings.redis_url, channel=f"{settings.relay_instance}-socketio")
    sio = GuardedServer(
        admission=AdmissionGate(settings.connect_admission_per_pass),
        async_mode="asgi",
        client_manager=manager,
        cors_allowed_origins=list(settings.cors_origins) if settings.cors_origins != ("*",) else "*",
        cors_credentials=True,
        max_http_buffer_size=max(settings.max_frame_bytes, settings.max_packet_bytes),
        ping_interval=settings.ping_interval_seconds,
        ping_timeout=settings.ping_timeout_seconds,
        http_compression=False,
        logger=False,
        engineio_logger=False,
    )
    # every Engine.IO socket writes its own frames once it is on a plain WebSocket (relay_gateway.fanout)
    sio.eio.sockets = SocketTable(settings.ws_send_buffer_bytes)
    sio.eio.create_queue = LeanQueue  # each socket's packet queue, at a tenth of asyncio.Queue's memory
    # prefetch above the ack batch so the broker keeps the event queue flowing while a batch is handled
    broker = Broker(
        settings.amqp_url, Topology(settings.relay_instance, settings.command_partitions), prefetch=4 * ACK_BATCH
    )
    redis = relay_redis.connect(settings.redis_url)
    rpc = RpcClient(
        broker,
        timeout=settings.rpc_timeout_seconds,
        settle=settings.rpc_settle_seconds,
        max_in_flight=settings.rpc_max_in_flight,
        claims=RedisClaims(redis, settings.relay_instance, ttl_seconds=settings.command_claim_ttl_seconds),
        claimed_wait=settings.rpc_claimed_wait_seconds,
    )
    verifier = TokenVerifier(
        secret=settings.jwt_secret,
        algorithms=settings.jwt_algorithms,
        public_key=settings.jwt_public_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        require_tenant=settings.require_tenant_claim,
    )
    gw = Gateway(
        settings=settings,
        sio=sio,
        redis=redis,
        auth=Authenticator(verifier, SessionStore(redis, settings.relay_instance, settings.session_ttl_seconds)),
        bus=CommandBus(rpc),
        delivery=EventDelivery(sio, broker, settings.replica_id, DIALECTS),
        limiter=RateLimiter(redis, settings.relay_instance, parse_limits(settings.rate_limits)),
    )
    router = SocketRouter(gw)
    lifecycle.register(router, NAMESPACES)
    for feature in FEATURES:
        if feature.register is not None:
            router.feature = feature.name
            feature.register(router)

    app_holder: dict[str, GatewayApp] = {}

    def check(name: str):  # type: ignore[no-untyped-def]
        async def run() -> bool:
            return (await app_holder["app"].ready())[name]

        return run

    checks = {name: check(name) for name in ("serving", "broker", "redis", "redis_listener", "event_consumer")}
    routes: list[BaseRoute] = [route for f in FEATURES for route in f.routes]
    routes.extend(ops_routes(checks))
    rest = Starlette(
        routes=routes,
        middleware=[Middleware(CorrelationMiddleware, service="gateway")],
        exception_handlers={
            RelayError: relay_error_handler,
            AuthError: auth_error_handler,
            RedisError: redis_down_handler,
            Exception: unexpected_error_handler,
        },
    )
    rest.state.gateway = gw
    asgi = socketio.ASGIApp(sio, other_asgi_app=rest, socketio_path="socket.io")
    app = GatewayApp(gw=gw, broker=broker, manager=manager, rpc=rpc, asgi=asgi)
    app_holder["app"] = app
    app.router = router
    return app
