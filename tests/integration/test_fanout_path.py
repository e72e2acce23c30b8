"""The gateway's WebSocket fast path (relay_gateway.fanout) with real sockets: a python-socketio server
on uvicorn in this process, real Socket.IO clients and raw WebSocket clients on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import socketio
import uvicorn
import websockets
from prometheus_client import REGISTRY
from relay_devstack.stack import free_port
from relay_gateway import fanout
from relay_gateway.fanout import DirectSocket, FanoutEmit, SocketTable
from relay_gateway.leanqueue import LeanQueue
from relay_gateway.packets import GuardedServer
from relay_gateway.wsprotocol import RelayWebSocketProtocol

from tests.waiting import until


@dataclass
class Server:
    sio: socketio.AsyncServer
    url: str
    disconnects: dict[str, str] = field(default_factory=dict)
    uvicorn: uvicorn.Server | None = None

    def eio_socket(self, sid: str) -> DirectSocket:
        return self.sio.eio.sockets[self.sio.manager.eio_sid_from_sid(sid, "/")]


@asynccontextmanager
async def serving(
    *, send_buffer: int = 4 << 20, deflate: bool = False, ping: float = 5, server_class: type = socketio.AsyncServer
) -> AsyncIterator[Server]:
    sio = server_class(async_mode="asgi", client_manager=FanoutEmit(), ping_interval=ping, ping_timeout=ping)
    sio.eio.sockets = SocketTable(send_buffer)
    sio.eio.create_queue = LeanQueue
    port = free_port()
    server = Server(sio, f"http://127.0.0.1:{port}")

    @sio.event
    async def connect(sid: str, environ: dict, auth: dict | None) -> None:
        await sio.enter_room(sid, "room")

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        server.disconnects[sid] = reason

    @sio.event
    async def echo(sid: str, data: object) -> object:
        return data

    config = uvicorn.Config(
        socketio.ASGIApp(sio),
        host="127.0.0.1",
        port=port,
        ws=RelayWebSocketProtocol,
        ws_ping_interval=None,
        ws_per_message_deflate=deflate,
        lifespan="off",
        log_level="warning",
    )
    uv = uvicorn.Server(config)
    server.uvicorn = uv
    task = asyncio.create_task(uv.serve())
    await until(lambda: uv.started)
    try:
        yield server
    finally:
        uv.should_exit = True
        await asyncio.wait_for(task, 10)


async def client(url: str, transports: list[str], received: list[object]) -> socketio.AsyncClient:
    c = socketio.AsyncClient(reconnection=False)
    c.on("n", received.append)
    c.on("blob", received.append)
    await c.connect(url, transports=transports, wait_timeout=10)
    return c


async def test_websocket_sockets_take_the_fast_path_and_get_every_event_once_in_order() -> None:
    async with serving() as server:
        received: list[list[object]] = [[], [], []]
        clients = [await client(server.url, ["websocket"], r) for r in received]
        assert all(server.eio_socket(c.get_sid()).writer is not None for c in clients)
        for n in range(500):
            await server.sio.emit("n", n, room="room")
        await until(lambda: all(len(r) == 500 for r in received))
        assert all(r == list(range(500)) for r in received)
        for c in clients:
            await c.disconnect()


async def upgrade_under_a_stream(server: Server) -> None:
    received: list[object] = []
    stop = asyncio.Event()

    async def stream() -> None:
        n = 0
        while not stop.is_set():
            await server.sio.emit("n", n, room="room")
            n += 1
            await asyncio.sleep(0.001)

    streaming = asyncio.create_task(stream())
    c = await client(server.url, ["polling", "websocket"], received)
    await until(lambda: c.eio.current_transport == "websocket")
    before_upgrade = len(received)
    await until(lambda: len(received) > before_upgrade + 50)
    stop.set()
    await streaming
    assert server.eio_socket(c.get_sid()).writer is not None
    # from the first event this socket got, every later one, once, in order (queued, then direct)
    assert received == list(range(received[0], received[0] + len(received)))  # type: ignore[arg-type]
    await c.disconnect()


async def test_events_queued_while_polling_keep_their_order_through_the_upgrade() -> None:
    """Packets queued for a polling socket (or during its upgrade) leave before any frame written directly."""
    async with serving() as server:
        for _ in range(3):
            await upgrade_under_a_stream(server)


async def test_polling_sockets_use_engineio_queue_and_receive_everything() -> None:
    async with serving() as server:
        received: list[object] = []
        c = await client(server.url, ["polling"], received)
        assert server.eio_socket(c.get_sid()).writer is None
        for n in range(100):
            await server.sio.emit("n", n, room="room")
            if n % 10 == 9:  # python-engineio's client refuses a poll answer of more than 16 packets
                await asyncio.sleep(0.05)
        await until(lambda: len(received) == 100)
        assert received == list(range(100))
        await c.disconnect()


async def test_acks_binary_attachments_and_skip_sid_through_the_fast_path() -> None:
    async with serving() as server:
        a_got: list[object] = []
        b_got: list[object] = []
        a = await client(server.url, ["websocket"], a_got)
        b = await client(server.url, ["websocket"], b_got)
        # the server's ack answer is written by the fast path too
        assert await a.call("echo", {"x": [1, 2, 3]}, timeout=5) == {"x": [1, 2, 3]}
        # a binary attachment becomes a second (binary) frame written after its placeholder packet
        blob = bytes(range(256)) * 300
        await server.sio.emit("blob", {"name": "f", "data": blob}, room="room")
        await server.sio.emit("n", "not for a", room="room", skip_sid=a.get_sid())
        await until(lambda: len(a_got) == 1 and len(b_got) == 2)
        assert a_got == [{"name": "f", "data": blob}]
        assert b_got == [{"name": "f", "data": blob}, "not for a"]
        # an emit to one socket with a callback (per-recipient ack ids) still gets its answer
        answers: list[object] = []
        b.on("ask", lambda data: {"answer": data})
        await server.sio.emit("ask", 7, to=b.get_sid(), callback=answers.append)
        await until(lambda: answers == [{"answer": 7}])
        await a.disconnect()
        await b.disconnect()


async def test_answers_leave_when_their_handler_returns_not_a_loop_pass_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a burst every loop pass is long; an ack or a connect's answer waiting for the next pass's flush is
    that much later. With the per-pass flush switched off, they still leave: the step that wrote them sends them."""
    monkeypatch.setattr(fanout.FLUSHER, "mark", lambda writer: None)
    async with serving(server_class=GuardedServer) as server:
        ws = await raw_socketio(server.url)  # the CONNECT answer came: written while its packet was read
        await ws.send('421["echo",{"x":1}]')
        assert await asyncio.wait_for(ws.recv(), 5) == '431[{"x":1}]'  # the ack: written by the handler's task
        await ws.close()


async def test_an_answer_only_event_is_answered_in_the_step_that_read_it_not_behind_the_burst_of_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under a connect burst every loop pass is long and each handler's task waits for its turn; an answer-only
    event (ping, health-check: `inline`) runs in the read step, so its ack waits for neither. Here the tasks are
    held back, as a busy loop would: the ping sent after an echo is answered first, the echo once they run."""
    async with serving(server_class=GuardedServer) as server:
        sio = server.sio

        @sio.on("ping")
        async def ping(sid: str, data: object) -> object:
            return {"pong": True}

        sio.inline_events.add(("/", "ping"))
        ws = await raw_socketio(server.url)
        gate = asyncio.Event()
        spawn = sio.start_background_task

        def held(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
            async def when_let_go() -> object:
                await gate.wait()
                return await fn(*args, **kwargs)

            return spawn(when_let_go)

        monkeypatch.setattr(sio, "start_background_task", held)
        await ws.send('421["echo",{"x":1}]')
        await ws.send('422["ping",{}]')
        assert await asyncio.wait_for(ws.recv(), 5) == '432[{"pong":true}]'
        gate.set()
        assert await asyncio.wait_for(ws.recv(), 5) == '431[{"x":1}]'
        await ws.close()


async def raw_socketio(url: str, **kwargs: object) -> websockets.ClientConnection:
    ws = await websockets.connect(url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket", **kwargs)
    assert (await ws.recv()).startswith("0")  # Engine.IO OPEN
    await ws.send("40")
    assert (await ws.recv()).startswith("40")  # Socket.IO CONNECT to /
    return ws


async def test_a_socket_that_negotiated_compression_falls_back_and_receives_every_event() -> None:
    async with serving(deflate=True) as server:
        ws = await raw_socketio(server.url, compression="deflate")
        assert ws.protocol.extensions, "the client and server should have negotiated permessage-deflate"
        await until(lambda: len(server.sio.eio.sockets) == 1)
        (socket,) = server.sio.eio.sockets.values()
        assert socket.writer is None
        for n in range(50):
            await server.sio.emit("n", n, room="room")
        got = []
        while len(got) < 50:
            frame = await asyncio.wait_for(ws.recv(), 5)
            if frame.startswith("42"):
                got.append(json.loads(frame[2:])[1])
        assert got == list(range(50))
        await ws.close()


async def test_a_stuck_client_is_disconnected_at_the_buffer_bound_and_the_others_get_everything() -> None:
    slow_before = REGISTRY.get_sample_value("relay_gateway_slow_consumers_total") or 0.0
    async with serving(send_buffer=256 * 1024) as server:
        healthy: list[object] = []
        fast = await client(server.url, ["websocket"], healthy)
        stuck = await raw_socketio(server.url, max_queue=1, compression=None)  # reads nothing from here on
        await until(lambda: len(server.sio.eio.sockets) == 2)
        payload = "x" * 60_000
        for n in range(400):  # ~24 MB: more than loopback's kernel buffers hold for the stuck socket
            await server.sio.emit("n", {"n": n, "pad": payload}, room="room")
            await asyncio.sleep(0.005)  # the healthy client shares this loop: give it time to read
        await until(lambda: len(healthy) == 400, timeout=30)
        assert [m["n"] for m in healthy] == list(range(400))  # type: ignore[index]
        await until(lambda: len(server.disconnects) == 1)
        assert fast.get_sid() not in server.disconnects
        assert fast.connected
        assert (REGISTRY.get_sample_value("relay_gateway_slow_consumers_total") or 0.0) == slow_before + 1
        await fast.disconnect()
        stuck.transport.abort()


async def test_the_heartbeat_pings_every_socket_and_ends_one_that_stops_answering() -> None:
    async with serving(ping=1) as server:
        received: list[object] = []
        alive = await client(server.url, ["websocket"], received)  # python-socketio answers every ping
        quiet = await raw_socketio(server.url)  # reads, but never answers a ping
        pings = 0
        ended = False
        try:
            async with asyncio.timeout(15):
                while True:
                    frame = await quiet.recv()
                    pings += frame == "2"
        except websockets.ConnectionClosed:
            ended = True
        except TimeoutError:
            pass
        assert pings >= 1, "the server should have pinged the quiet client"
        assert ended, "the server should have closed the connection of a client that never answered"
        await until(lambda: "ping timeout" in server.disconnects.values())
        assert alive.connected, "a client that answers its pings stays connected"
        assert alive.get_sid() not in server.disconnects
        await alive.disconnect()


async def test_a_server_side_disconnect_ends_the_connection_even_if_the_client_keeps_it_open() -> None:
    async with serving(ping=1) as server:
        stubborn = await raw_socketio(server.url)  # will not close on Engine.IO's CLOSE packet
        await until(lambda: len(server.sio.eio.sockets) == 1)
        (sid,) = [s for s in server.sio.manager.get_participants("/", "room")]
        await server.sio.disconnect(sid[0])
        frames = []
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(15):
                while True:
                    frames.append(await stubborn.recv())
        assert "1" in frames or "41" in frames  # told it was disconnected before the connection went


SERVER_CODE = ("uvicorn/", "relay_gateway/", "engineio/async_server", "engineio/async_socket", "socketio/async_server")


def server_tasks() -> set[asyncio.Task[object]]:
    """The loop's tasks running server code (the clients of these tests share the loop)."""
    return {t for t in asyncio.all_tasks() if any(part in t.get_coro().cr_code.co_filename for part in SERVER_CODE)}


async def test_idle_websockets_hold_no_task_and_a_burst_of_events_is_handled_in_order() -> None:
    """Reads are detached from the ASGI call: an idle socket holds no task, and a client's burst (longer
    than the inbox that pauses reading) reaches the handlers complete and in the order it was sent."""
    async with serving() as server:
        seen: dict[str, list[int]] = {}

        @server.sio.on("seq")
        async def seq(sid: str, n: int) -> None:
            seen.setdefault(sid, []).append(n)

        idle = server_tasks()
        clients = [await client(server.url, ["websocket"], []) for _ in range(20)]
        await asyncio.sleep(0.2)
        # what the server runs now is shared by all its sockets (the heartbeat sweep, Engine.IO's service task)
        running = {t.get_coro().__qualname__ for t in server_tasks() - idle}
        assert running <= {"Deadlines._sweep", "AsyncServer._service_task"}, "an idle socket should hold no task"
        for c in clients[:3]:
            for n in range(200):
                await c.emit("seq", n)
        await until(lambda: sorted(map(len, seen.values())) == [200, 200, 200])
        assert all(got == list(range(200)) for got in seen.values())
        for c in clients:
            await c.disconnect()
        await until(lambda: len(server.disconnects) == 20)
        # python-socketio's client closes its WebSocket before its writer sends the DISCONNECT packet
        assert set(server.disconnects.values()) <= {
            server.sio.reason.CLIENT_DISCONNECT,
            server.sio.reason.TRANSPORT_CLOSE,
        }
        await until(lambda: len(server.sio.eio.sockets) == 0)


async def test_a_closed_connection_is_heard_once_and_leaves_nothing_behind() -> None:
    async with serving() as server:
        ws = await raw_socketio(server.url)
        await until(lambda: len(server.sio.eio.sockets) == 1)
        ws.transport.abort()  # no CLOSE packet, no closing handshake: the connection just goes
        await until(lambda: list(server.disconnects.values()) == [server.sio.reason.TRANSPORT_CLOSE])
        await until(lambda: len(server.sio.eio.sockets) == 0)
        await asyncio.sleep(0.2)
        assert len(server.disconnects) == 1


async def test_an_oversized_packet_ends_the_socket_and_closes_the_websocket() -> None:
    async with serving() as server:
        limit = server.sio.eio.max_http_buffer_size
        ws = await raw_socketio(server.url, max_size=None)
        bystander = await raw_socketio(server.url)
        await ws.send("4" + "x" * limit)
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
        assert ws.close_code == 1009
        await until(lambda: list(server.disconnects.values()) == [server.sio.reason.TRANSPORT_CLOSE])
        await bystander.send('421["echo",2]')
        assert await asyncio.wait_for(bystander.recv(), 5) == "431[2]"
        await bystander.close()


async def test_a_server_shutting_down_closes_detached_connections_and_each_socket_hears_its_end() -> None:
    async with serving() as server:
        clients = [await raw_socketio(server.url) for _ in range(3)]
        await until(lambda: len(server.sio.eio.sockets) == 3)
        assert server.uvicorn is not None
        server.uvicorn.should_exit = True
        for ws in clients:
            with pytest.raises(websockets.ConnectionClosed):
                async with asyncio.timeout(10):
                    while True:
                        await ws.recv()
            assert ws.close_code == 1012  # "service restart": the client reconnects elsewhere
        await until(lambda: len(server.disconnects) == 3)
        assert set(server.disconnects.values()) == {server.sio.reason.TRANSPORT_CLOSE}


async def test_a_clients_binary_event_reaches_its_handler_through_the_detached_reads() -> None:
    """A binary event is a text placeholder frame and a binary frame: both come in order to the socket."""
    async with serving() as server:
        got: list[bytes] = []

        @server.sio.on("upload")
        async def upload(sid: str, data: dict) -> int:
            got.append(data["blob"])
            return len(data["blob"])

        c = await client(server.url, ["websocket"], [])
        blob = bytes(range(256)) * 64
        assert await c.call("upload", {"blob": blob}, timeout=5) == len(blob)
        assert got == [blob]
        await c.disconnect()
