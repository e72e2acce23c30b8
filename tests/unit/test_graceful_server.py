"""The processes' uvicorn server: an idle one wakes once a second (not ten times), still stops at once when
asked, and still serves a fresh Date header."""

from __future__ import annotations

import asyncio
import socket
from email.utils import parsedate_to_datetime

import uvicorn
from relay_ops.shutdown import GracefulServer
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def hello(_: object) -> PlainTextResponse:
    return PlainTextResponse("hi")


async def until(predicate: object, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline
        await asyncio.sleep(0.01)


async def date_header(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    head = (await reader.read()).decode().split("\r\n\r\n")[0]
    writer.close()
    return next(line.split(": ", 1)[1] for line in head.split("\r\n") if line.lower().startswith("date:"))


async def test_an_idle_server_ticks_once_a_second_and_stops_at_once_when_asked() -> None:
    port = free_port()
    config = uvicorn.Config(Starlette(routes=[Route("/", hello)]), host="127.0.0.1", port=port, lifespan="off")
    server = GracefulServer(config)
    ticks: list[float] = []
    on_tick = server.on_tick

    async def counted(counter: int) -> bool:
        ticks.append(asyncio.get_running_loop().time())
        return await on_tick(counter)

    server.on_tick = counted  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started)
        await until(lambda: len(ticks) >= 3)
        assert ticks[-1] - ticks[-2] >= 0.9  # uvicorn's own loop: every 0.1 s
        first = parsedate_to_datetime(await date_header(port))
        await until(lambda: len(ticks) >= 5)
        assert parsedate_to_datetime(await date_header(port)) > first  # refreshed on every tick
    finally:
        asked = asyncio.get_running_loop().time()
        server.should_exit = True
        await asyncio.wait_for(task, 5)
    assert asyncio.get_running_loop().time() - asked < 0.5  # not a tick later
