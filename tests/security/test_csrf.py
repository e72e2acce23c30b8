"""Cookie-authenticated writes: only from an allowed Origin (CORS_ORIGINS, else the gateway's own host)
and only with a JSON body (issue 13, finding 5). Bearer tokens are not ambient: no Origin check."""

from __future__ import annotations

import aiohttp
import httpx
import pytest

from tests.security.conftest import ALLOWED_ORIGIN
from tests.security.raw import RawSocket

pytestmark = pytest.mark.e2e


async def _visitor_cookie(base_url: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, timeout=15)
    response = await client.post("/v2/visitor/session", json={"tenantId": "acme", "name": "csrf"})
    assert response.status_code == 201 and "visitor_session" in client.cookies
    return client


async def test_a_foreign_origin_cannot_write_with_the_session_cookie(gateways, storage):
    client = await _visitor_cookie(gateways[0])
    try:
        before = await storage.snapshot()
        for origin in ("http://evil.example", "null", "http://127.0.0.1.evil.example"):
            for content_type, body in (("text/plain", '{"subject":"csrf"}'), ("application/json", "{}")):
                response = await client.post(
                    "/v2/chats", content=body, headers={"origin": origin, "content-type": content_type}
                )
                assert response.status_code == 403, (origin, content_type, response.text)
                assert response.json()["error"]["code"] == "PERMISSION_DENIED"
        response = await client.post("/v2/chats/any-chat/close", headers={"origin": "http://evil.example"})
        assert response.status_code == 403
        assert await storage.snapshot() == before
    finally:
        await client.aclose()


async def test_a_cookie_write_needs_a_json_body(gateways, storage):
    client = await _visitor_cookie(gateways[1])
    try:
        before = await storage.snapshot()
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            response = await client.post(
                "/v2/chats", content='{"subject":"x"}', headers={"origin": ALLOWED_ORIGIN, "content-type": content_type}
            )
            assert response.status_code == 400, (content_type, response.text)
            assert response.json()["error"]["code"] == "VALIDATION_ERROR"
        assert await storage.snapshot() == before
    finally:
        await client.aclose()


async def test_allowed_origins_and_own_host_and_tokens_still_write(gateways, mint):
    client = await _visitor_cookie(gateways[0])
    try:
        own = gateways[0]
        for origin in (ALLOWED_ORIGIN, own, None):
            headers = {"origin": origin} if origin else {}
            response = await client.post("/v2/chats", json={"subject": "ok"}, headers=headers)
            assert response.status_code == 201, (origin, response.text)
        # a GET is safe: no Origin check
        assert (await client.get("/v2/chats", headers={"origin": "http://evil.example"})).status_code == 200
    finally:
        await client.aclose()
    token = mint("v-csrf-bearer", "visitor")
    async with httpx.AsyncClient(base_url=gateways[1], timeout=15) as bearer:
        response = await bearer.post(
            "/v2/chats",
            json={"subject": "api"},
            headers={"authorization": f"Bearer {token}", "origin": "http://evil.example"},
        )
        assert response.status_code == 201, response.text


async def test_socket_handshakes_from_a_foreign_origin_are_refused(gateways, mint):
    token = mint("v-origin", "visitor")
    foreign = RawSocket(gateways[0], auth={"token": token}, origin="http://evil.example")
    try:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await foreign.connect()
    finally:
        await foreign.close()
    async with RawSocket(gateways[1], auth={"token": token}, origin=ALLOWED_ORIGIN) as allowed:
        assert (await allowed.call("health-check"))["success"] is True
