"""Property: malformed payloads at every support socket event and REST body change nothing stored,
get a SPEC §7 answer, and never cost the connection.

Hypothesis drives the examples synchronously on a private event loop (it does not run async tests);
the sockets and HTTP clients live on that loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relay_devstack import Stack
from relay_sdk import RelayClient, RelaySocket

from tests.codes import CLIENT_ERROR_CODES

pytestmark = pytest.mark.e2e

SOCKET_EVENTS = ["chat:join", "chat:leave", "chat:sync", "typing:start", "typing:stop", "auth:refresh"]
FUZZ = settings(max_examples=35, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["", " ", "chat:", "chat::commercial", "../../etc", "$where", "a.b", "x" * 300, "CHAT"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "chatId",
        "afterSeq",
        "limit",
        "token",
        "content",
        "type",
        "isInternal",
        "attachment",
        "clientMessageId",
        "subject",
        "replyTo",
    ]
)
payloads = st.one_of(json_values, st.dictionaries(field_names, json_values, max_size=5))


class Harness:
    """A visitor and an agent on their own loop; `stored()` is everything a user could see of the chat."""

    def __init__(self, gateways: list[str], mint: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.gateways = gateways
        self.mint = mint
        self.agent = RelayClient(gateways[1], token=mint("a-fuzz", "commercial"))
        self.run(self._setup())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 30))

    async def _setup(self) -> None:
        self.owner = RelayClient(self.gateways[0], token=self.mint("v-fuzz-owner", "visitor"))
        self.chat_id = (await self.owner.open_chat("fuzz target"))["chatId"]
        await self.owner.send(self.chat_id, "before")
        await self.agent.send(self.chat_id, "note", isInternal=True)

    async def stored(self) -> Any:
        history = await self.agent.history(self.chat_id, limit=200)
        chat = await self.agent.chat(self.chat_id)
        mine = await self.owner.chats()
        return history, {k: chat[k] for k in ("status", "lastSeq", "participants")}, [c["chatId"] for c in mine]

    def post_refused(self, client: RelayClient, path: str, content: bytes, content_type: str) -> None:
        """POST raw bytes; the answer must be a SPEC §7 refusal."""
        headers = {**client._headers(), "Content-Type": content_type}
        response = self.run(client.http.post(path, content=content, headers=headers))
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]["code"] in CLIENT_ERROR_CODES

    def assert_unchanged_after(self, throw: Any, before: Any, client: RelayClient) -> None:
        try:
            throw()
            assert self.run(self.stored()) == before
        finally:
            self.run(client.close())

    def close(self) -> None:
        self.run(self.owner.close())
        self.run(self.agent.close())
        self.loop.close()


@pytest.fixture(scope="module")
def harness(stack: Stack, mint: Any) -> Iterator[Harness]:
    h = Harness(stack.gateway_urls, mint)
    yield h
    h.close()


def substitute(value: Any, chat_id: str) -> Any:
    """Put the real chat id where the strategy drew the placeholder, so some payloads aim at real data."""
    if value == "CHAT":
        return chat_id
    if isinstance(value, dict):
        return {k: substitute(v, chat_id) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, chat_id) for v in value]
    return value


@pytest.mark.parametrize("event", SOCKET_EVENTS)
def test_malformed_socket_payloads_change_nothing_and_keep_the_connection(harness: Harness, event: str) -> None:
    user = f"v-fuzz-{event.replace(':', '-')}"
    sock = RelaySocket(harness.gateways[0], auth={"token": harness.mint(user, "visitor")})
    harness.run(sock.connect())
    before = harness.run(harness.stored())

    @FUZZ
    @given(payload=payloads)
    def throw(payload: Any) -> None:
        payload = substitute(payload, harness.chat_id)
        ack = harness.run(sock.call(event, payload))
        assert isinstance(ack, dict) and isinstance(ack.get("success"), bool), ack
        if not ack["success"]:
            assert ack["error"]["code"] in CLIENT_ERROR_CODES, ack
        assert sock.connected

    try:
        throw()
        assert harness.run(harness.stored()) == before
        assert harness.run(sock.call("health-check"))["success"] is True
        assert sock.connected
    finally:
        harness.run(sock.close())


bad_bodies = st.one_of(
    json_values.filter(lambda v: not isinstance(v, dict)),  # not an object
    st.dictionaries(field_names, json_values, max_size=4).map(lambda d: {**d, "unexpected": 1}),  # unknown field
    st.fixed_dictionaries(
        {
            "chatId": st.just("CHAT"),
            "content": st.one_of(st.integers(), st.lists(scalars), st.just("   "), st.just("x" * 4001)),
        }
    ),
    st.fixed_dictionaries(
        {
            "chatId": st.just("CHAT"),
            "content": st.just("ok"),
            "type": st.text(max_size=10).filter(lambda t: t not in {"text", "image", "file", "audio", "video"}),
        }
    ),
    st.fixed_dictionaries({"chatId": st.just("CHAT"), "content": st.just("ok"), "attachment": json_values}),
    st.binary(max_size=200).map(lambda b: b"\xff" + b),  # not JSON at all
)
ROUTES = ["/v2/messages", "/v2/chats", "/v2/chats/CHAT/close"]


@pytest.mark.parametrize("route", ROUTES)
def test_malformed_rest_bodies_change_nothing(harness: Harness, route: str) -> None:
    user = f"v-fuzz-rest-{route.strip('/').replace('/', '-')}"
    client = RelayClient(harness.gateways[1], token=harness.mint(user, "visitor"))
    path = route.replace("CHAT", harness.chat_id)
    before = harness.run(harness.stored())

    @FUZZ
    @given(body=bad_bodies)
    def throw(body: Any) -> None:
        body = substitute(body, harness.chat_id)
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        harness.post_refused(client, path, content, "application/json")

    harness.assert_unchanged_after(throw, before, client)


multipart_junk = st.one_of(
    st.binary(max_size=300),
    st.lists(st.tuples(st.sampled_from(["file", "chatId", "x"]), st.text(max_size=30)), max_size=3).map(
        lambda parts: (
            "".join(
                f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n' for name, value in parts
            ).encode()
            + b"--b--\r\n"
        )
    ),
)


def test_malformed_uploads_change_nothing(harness: Harness) -> None:
    client = RelayClient(harness.gateways[0], token=harness.mint("v-fuzz-upload", "visitor"))
    before = harness.run(harness.stored())

    @FUZZ
    @given(body=multipart_junk, content_type=st.sampled_from(["multipart/form-data; boundary=b", "application/json"]))
    def throw(body: bytes, content_type: str) -> None:
        harness.post_refused(client, "/v2/files/upload", body, content_type)

    harness.assert_unchanged_after(throw, before, client)
