"""Property: raw Engine.IO/Socket.IO frames and arbitrary bodies and queries on every REST route get a
SPEC §7 code, never a 500, leave the connection usable and store nothing when refused.

Hypothesis drives the examples synchronously on a loop of the harness's own (it does not run async
tests); sockets and HTTP clients live on that loop. Examples are bounded (max_examples, a deadline per
example) so the tier stays well inside CI's budget.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relay_devstack import Stack
from relay_sdk import RelayClient

from tests.codes import CLIENT_ERROR_CODES
from tests.security.conftest import Storage
from tests.security.raw import RawSocket
from tests.security.surface import fill, rest_endpoints

pytestmark = pytest.mark.e2e

BOUNDED = settings(
    max_examples=60,
    deadline=timedelta(seconds=10),
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same examples every run: a failure here is reproducible, not a flake
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["\x00", "\ud800", "$where", "../../etc/passwd", "x" * 300, "REAL", "{}", "[]"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
FIELDS = [
    "chatId", "content", "channelId", "conversacionId", "messageId", "mensajeId", "afterSeq", "lastSeq", "limit",
    "emoji", "text", "members", "participantes", "tableSessionId", "name", "qty", "unitPrice", "status", "subject",
    "isInternal", "replyTo", "userId", "message", "role", "tipo", "before", "dateFrom",
]  # fmt: skip
bodies = st.one_of(json_values, st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5))
queries = st.dictionaries(
    st.sampled_from([*FIELDS, "token", "status"]),
    st.one_of(st.text(max_size=30), st.integers(min_value=-(2**80), max_value=2**80).map(str)),
    max_size=3,
)


def _sio_frame(sio_type: str, count: str, namespace: str, ack_id: str, payload: str) -> str:
    return "4" + sio_type + count + namespace + ack_id + payload


json_text = json_values.map(lambda v: json.dumps(v, allow_nan=True))
frames = st.one_of(
    # Socket.IO packets of every type but CONNECT/DISCONNECT, with arbitrary, maybe truncated, JSON
    st.builds(
        _sio_frame,
        st.sampled_from("23456789"),
        st.sampled_from(["", "1-", "0-", "7-", "99-", "-"]),
        st.sampled_from(["", "/chat,", "/nope,", "/"]),
        st.sampled_from(["", "1", "99999999999999999999"]),
        st.one_of(
            json_text,
            json_text.flatmap(lambda t: st.integers(0, len(t)).map(lambda n: t[:n])),
            st.builds(
                lambda e, v: json.dumps([e, v]), st.sampled_from(["chat:join", "test", "x" * 200, ""]), json_values
            ),
        ),
    ),
    st.text(max_size=40).map(lambda t: "4" + t),  # any Engine.IO message
    st.binary(max_size=64),  # stray binary attachments
)


class Harness:
    """A user with its own chat and channel, on a loop of its own."""

    def __init__(self, stack: Stack, mint: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.gateways = stack.gateway_urls
        self.storage = Storage(stack)
        self.token = mint("g-fuzz", "admin", "agent", "waiter", "manager", tenant="fuzz", claim="restaurantId")
        self.client = RelayClient(self.gateways[0], token=self.token)
        self.ids = self.run(self._setup())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 30))

    async def _setup(self) -> dict[str, str]:
        chat = await self.client.open_chat("fuzz")
        channel = await self.client.post("/v2/channels", {"name": "fuzz"})
        order = await self.client.post("/api/v1/orders", {"tableSessionId": "fuzz"}, expect=201)
        return {"chat_id": chat["chatId"], "channel_id": channel["channelId"], "order_id": order["orderId"]}

    def close(self) -> None:
        self.run(self.client.close())
        self.loop.close()


@pytest.fixture(scope="module")
def harness(stack: Stack, mint: Any) -> Iterator[Harness]:
    h = Harness(stack, mint)
    yield h
    h.close()


def _real(value: Any, ids: dict[str, str]) -> Any:
    """Aim some payloads at real data: the strategy's `REAL` becomes the harness's chat id."""
    if value == "REAL":
        return ids["chat_id"]
    if isinstance(value, dict):
        return {k: _real(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_real(v, ids) for v in value]
    return value


def test_raw_frames_get_a_code_and_keep_the_connection(harness: Harness) -> None:
    sock = RawSocket(harness.gateways[1], auth={"token": harness.token})
    harness.run(sock.connect())
    before = harness.run(harness.storage.snapshot())

    @BOUNDED
    @given(frame=frames)
    def throw(frame: str | bytes) -> None:
        start = len(sock.received)
        harness.run(sock.send(frame))
        ack = harness.run(sock.call("health-check", timeout=5))
        assert ack["success"] is True, (frame, ack)
        for error in sock.events("error", start):
            assert error["code"] in CLIENT_ERROR_CODES, (frame, error)

    try:
        throw()
        assert sock.open
        assert harness.run(harness.storage.snapshot()) == before
    finally:
        harness.run(sock.close())


ENDPOINTS = [e for e in rest_endpoints() if not e.path.startswith(("/app/", "/api/v1/auth/")) and e.path != "/"]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_every_rest_body_and_query_gets_a_code_and_stores_nothing_when_refused(harness: Harness, method: str) -> None:
    endpoints = [e for e in ENDPOINTS if e.method == method]
    ids = {**harness.ids, "*": harness.ids["chat_id"]}

    @BOUNDED
    @given(
        endpoint=st.sampled_from(endpoints),
        body=bodies,
        query=queries,
        raw_id=st.one_of(st.none(), st.text(min_size=1, max_size=20).filter(lambda t: "/" not in t and "?" not in t)),
    )
    def throw(endpoint: Any, body: Any, query: dict[str, str], raw_id: str | None) -> None:
        path = fill(endpoint.path, {"*": quote(raw_id, safe="")} if raw_id is not None else ids)
        before = harness.run(harness.storage.snapshot())
        content = json.dumps(_real(body, harness.ids), allow_nan=True).encode()
        response = harness.run(
            harness.client.http.request(
                endpoint.method,
                path,
                params=query,
                content=content if method == "POST" else None,
                headers={**harness.client._headers(), "content-type": "application/json"},
            )
        )
        assert response.status_code < 500, (endpoint, body, query, response.text[:300])
        if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
            assert response.json()["error"]["code"] in CLIENT_ERROR_CODES, (endpoint, response.text[:300])
            assert harness.run(harness.storage.snapshot()) == before, (endpoint, body)

    throw()
    assert harness.run(harness.client.chats())  # the gateway still answers this caller
