"""The seeds' own JavaScript clients, taken from the seed documents and run under Node with the
official socket.io-client, against two gateway replicas. Only what a user would edit changes: the
server URL, the token, and ids that must exist (SPEC §1: "client code must run unchanged")."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from relay_sdk import RelayClient

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT.parent / "shared" / "seeds"
NODE_MODULES = ROOT / "web" / "node_modules"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("node") is None or not (NODE_MODULES / "socket.io-client").exists() or not SEEDS.exists(),
        reason="needs node, the web client's socket.io-client (task install:web) and the seed documents",
    ),
]


def seed_block(seed: str, marker: str) -> str:
    """The first ```javascript block of seed `seed` containing `marker`, verbatim."""
    text = next(SEEDS.glob(f"{seed}-*.md")).read_text()
    for block in re.findall(r"```javascript\n(.*?)```", text, re.S):
        if marker in block:
            return str(block)
    raise AssertionError(f"{seed}: no javascript block with {marker!r}")


@pytest.fixture
def node_dir() -> Iterator[Path]:
    """A scratch directory whose node_modules is the web client's (resolves for CommonJS and ESM)."""
    tmp = Path(tempfile.mkdtemp(prefix="relay-seed-js-"))
    (tmp / "node_modules").symlink_to(NODE_MODULES)
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


class NodeClient:
    def __init__(self, directory: Path, name: str, code: str) -> None:
        path = directory / name
        path.write_text(code)
        self.proc = subprocess.Popen(
            ["node", str(path)], cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._reader = asyncio.get_running_loop().run_in_executor(None, self._read)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    async def wait_for(self, text: str, timeout: float = 15) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = [line for line in self.lines if text in line]
            if found:
                return found[0]
            assert loop.time() < deadline, f"{text!r} not printed; output so far:\n" + "\n".join(self.lines)
            assert self.proc.poll() is None or self.lines, "node exited without output"
            await asyncio.sleep(0.1)

    async def finish(self, timeout: float = 15) -> int:
        loop = asyncio.get_running_loop()
        code = await loop.run_in_executor(None, self.proc.wait, timeout)
        await self._reader
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return int(code)

    async def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        await self.finish()


async def test_seed_003_programmatic_client(gateways, mint, node_dir):
    tenant = f"seed3-{uuid.uuid4().hex[:6]}"
    async with RelayClient(gateways[0], token=mint("creator", "cliente", tenant=tenant)) as rest:
        body = {"conversacionId": "conv_test", "tipo": "grupal", "participantes": [{"usuario": "test_user"}]}
        await rest.post("/api/mensajeria/conversaciones", body, expect=201)
    code = seed_block("seed-003", "Flujo completo de prueba")
    code = code.replace("http://localhost:3000", gateways[1]).replace("test_token", mint("test_user", tenant=tenant))
    client = NodeClient(node_dir, "seed003.js", code)
    assert await client.finish() == 0, client.lines  # it disconnects itself after its message comes back
    assert "Conectado" in client.lines
    assert "Mensaje recibido: Hola mundo!" in client.lines


async def test_seed_004_websocket_script_sees_the_order_flow(gateways, node_dir):
    async def login(url: str, email: str) -> RelayClient:
        async with RelayClient(url) as anonymous:
            body = await anonymous.post("/api/v1/auth/login", {"email": email, "password": "password123"}, expect=200)
        return RelayClient(url, token=body["accessToken"])

    kitchen = await login(gateways[0], "kitchen@restaurante.com")
    code = seed_block("seed-004", "WS_URL")
    code = code.replace("your-jwt-token-here", kitchen.token or "").replace("http://localhost:3000", gateways[1])
    client = NodeClient(node_dir, "test-websocket.js", code)
    try:
        await client.wait_for("Connected to WebSocket server")
        waiter = await login(gateways[0], "waiter@restaurante.com")
        order = await waiter.post("/api/v1/orders", {"tableSessionId": "session-id-here"}, expect=201)
        item = await waiter.post(
            f"/api/v1/orders/{order['id']}/items", {"name": "Hamburguesa", "qty": 2, "unitPrice": 15.50}, expect=201
        )
        item_id = item["id"] if "id" in item else item["items"][0]["id"]
        await waiter.post(f"/api/v1/orders/{order['id']}/confirm", expect=200)
        await kitchen.post(
            f"/api/v1/orders/{order['id']}/items/{item_id}/status", {"status": "IN_PROGRESS"}, expect=200
        )
        await client.wait_for("Item status changed")
        printed = "\n".join(client.lines)
        assert "New order" in printed and "Order status changed" in printed
        assert order["id"] in printed and '"IN_PROGRESS"' in printed and '"15.50"' in printed
        await waiter.close()
    finally:
        await client.stop()
        await kitchen.close()


async def test_seed_002_client_sees_users_and_broadcasts(gateways, mint, node_dir):
    tenant = f"seed2-{uuid.uuid4().hex[:6]}"
    code = seed_block("seed-002", "Get active users")
    code = code.replace("your-jwt-token", mint("seed-user", "user", tenant=tenant)).replace(
        "http://localhost:3000", gateways[0]
    )
    client = NodeClient(node_dir, "seed002.mjs", code)  # the seed writes an ES module (`import io from ...`)
    try:
        await client.wait_for("Connected:")
        await client.wait_for("Active users:")
        said = await client.wait_for("Message from")
        assert said.endswith(": Hello everyone!")
    finally:
        await client.stop()


async def test_seed_001_agent_client_joins_and_receives(gateways, mint, node_dir):
    """seed-001's agent connection (option A), chat join and message listener, as one ES module."""
    visitor = RelayClient(gateways[0], token=mint(f"v-{uuid.uuid4().hex[:6]}", "visitor"))
    chat_id = (await visitor.open_chat())["chatId"]
    code = "\n".join(
        [
            seed_block("seed-001", "tu_jwt_token_aqui"),
            seed_block("seed-001", "Unirse a la sala del chat"),
            seed_block("seed-001", "Escuchar mensajes nuevos en tiempo real"),
            # the seed's UI function, which the app supplies
            "function actualizarListaDeMensajes(m) { console.log('UI', m.seq, m.content); }",
        ]
    )
    code = code.replace("tu_jwt_token_aqui", mint("agent-seed", "commercial")).replace("chat-uuid-123", chat_id)
    client = NodeClient(node_dir, "seed001.mjs", code.replace("http://localhost:3000", gateways[1]))
    try:
        await client.wait_for("Mensaje de bienvenida:")
        assert (await client.wait_for("Unido a la sala:")).endswith(f"chat:{chat_id}")
        await client.wait_for("Confirmación de unión:")
        await visitor.post("/v2/messages", {"chatId": chat_id, "content": "hola agente"}, expect=201)
        assert await client.wait_for("UI 1 hola agente")
    finally:
        await client.stop()
        await visitor.close()
