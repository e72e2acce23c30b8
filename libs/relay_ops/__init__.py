"""The operations HTTP surface every service exposes: /healthz, /readyz, /metrics."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import uvicorn
import uvloop
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay_ops.metrics import READY

ReadinessCheck = Callable[[], Awaitable[bool]]


def run_process(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a Relay process's main coroutine on uvloop (asyncio.run would keep the default loop: uvicorn
    applies its `loop` setting only when it owns the loop)."""
    uvloop.run(main())


def ops_routes(checks: dict[str, ReadinessCheck], registry: CollectorRegistry = REGISTRY) -> list[Route]:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def evaluate() -> dict[str, bool]:
        results = dict(zip(checks, await asyncio.gather(*(c() for c in checks.values())), strict=True))
        for name, ok in results.items():
            READY.labels(name).set(1 if ok else 0)
        return results

    async def readyz(_: Request) -> Response:
        results = await evaluate()
        ready = all(results.values())
        return JSONResponse({"ready": ready, "checks": results}, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        await evaluate()  # so a scrape records readiness as of now, probed or not
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]


async def run_service(
    start: Callable[[], Awaitable[None]],
    close: Callable[[], Awaitable[None]],
    *,
    host: str,
    port: int,
    checks: dict[str, ReadinessCheck],
    jobs: Sequence[Callable[[], Awaitable[None]]] = (),
) -> None:
    """A service's life: start it, serve its ops endpoints and background jobs until stopped (SIGTERM or
    SIGINT), close it (a service's close lets the commands in hand finish, so a stop answers them)."""
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, main.cancel)
    await start()
    try:
        await asyncio.gather(serve_ops(host, port, checks), *(job() for job in jobs))
    except asyncio.CancelledError:
        pass  # stopped by a signal: close below, exit 0
    finally:
        await close()


async def serve_ops(host: str, port: int, checks: dict[str, ReadinessCheck]) -> None:
    """Run the ops endpoints until cancelled (services that have no HTTP API of their own)."""
    app = Starlette(routes=ops_routes(checks))
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    await server.serve()
