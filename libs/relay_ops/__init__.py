"""The operations HTTP surface every service exposes: /healthz, /readyz, /metrics."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import uvicorn
import uvloop
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from relay_log import get_logger
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay_ops.looplag import GcPauses, LoopLag, QuietFullCollections, StallProbe
from relay_ops.metrics import READY
from relay_ops.shutdown import Drain, GracefulServer

log = get_logger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]
JOBS_STOP_SECONDS = 2  # seconds (an int: uvicorn types timeout_graceful_shutdown so)
CLOSE_SECONDS = 15.0  # then exit anyway: the broker requeues whatever was not acked


def run_process(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a Relay process's main coroutine on uvloop (asyncio.run would keep the default loop: uvicorn
    applies its `loop` setting only when it owns the loop)."""
    # What the imports left (~85k objects in a gateway) lives as long as the process: freeze it out of the
    # collector's reach, so a full collection walks only the objects made since. Mid-storm, full collections over
    # everything stalled a gateway's loop for 100-500 ms (bench/reports/presence.md, "What the ack p99 was").
    gc.collect()
    gc.freeze()
    uvloop.run(_with_lag_probe(main()))


async def _with_lag_probe(main: Coroutine[Any, Any, None]) -> None:
    GcPauses().install()
    probe = LoopLag(asyncio.get_running_loop())
    running: list[LoopLag | QuietFullCollections | StallProbe] = [probe]
    every = float(os.environ.get("RELAY_GC_FULL_EVERY_SECONDS", "30"))  # 0: CPython's own trigger
    if every > 0:
        running.append(QuietFullCollections(probe, every=every))
    if "RELAY_STALL_PROBE_MS" in os.environ:
        running.append(StallProbe(probe, float(os.environ["RELAY_STALL_PROBE_MS"])))
    for part in running:
        part.start()
    try:
        await main
    finally:
        for part in reversed(running):
            part.stop()


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
    jobs: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    drain: Drain | None = None,
) -> None:
    """A service's life: start it, serve its ops endpoints and background jobs until SIGTERM, then
    `drain` (stop consuming, finish what is in progress; unready meanwhile), stop the jobs, close."""
    await start()
    server: GracefulServer | None = None

    async def serving() -> bool:
        return server is not None and not server.draining

    app = Starlette(routes=ops_routes({"serving": serving, **checks}))
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=JOBS_STOP_SECONDS
    )
    server = GracefulServer(config, drain=drain)
    running = [asyncio.create_task(job()) for job in jobs]
    try:
        await server.serve()
    finally:
        for task in running:
            task.cancel()
        # a job whose library swallowed the cancellation must not keep the process from closing
        if running:
            await asyncio.wait(running, timeout=JOBS_STOP_SECONDS)
        try:
            await asyncio.wait_for(close(), CLOSE_SECONDS)
        except TimeoutError:
            log.error("process.close_timed_out", seconds=CLOSE_SECONDS)
