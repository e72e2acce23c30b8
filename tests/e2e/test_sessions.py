"""Cookie sessions (seed-001) and dev login (seed-004) work for sockets and REST alike."""

from __future__ import annotations

import httpx
import pytest
from relay_sdk import RelaySocket

pytestmark = pytest.mark.e2e


async def test_visitor_cookie_session_works_for_rest_and_sockets_on_both_replicas(gateways):
    async with httpx.AsyncClient(base_url=gateways[0]) as browser:
        created = await browser.post("/v2/visitor/session", json={"tenantId": "acme", "name": "Vera"})
        assert created.status_code == 201
        cookie = created.cookies.get("visitor_session")
        assert cookie and "httponly" in created.headers["set-cookie"].lower()
        assert "samesite=lax" in created.headers["set-cookie"].lower()
        chat = (await browser.post("/v2/chats", json={})).json()
        assert chat["participants"][0]["userId"] == created.json()["visitorId"]
        sock = RelaySocket(gateways[1], headers={"Cookie": f"visitor_session={cookie}"})
        async with sock:
            connected = await sock.wait_for("connected")
            assert connected["user"]["userId"] == created.json()["visitorId"]
            assert (await sock.call("chat:join", {"chatId": chat["chatId"]}))["success"] is True
            await browser.post("/v2/messages", json={"chatId": chat["chatId"], "content": "por cookie"})
            assert (await sock.wait_for("message:new"))["content"] == "por cookie"
        assert (await browser.post("/api/v1/auth/logout")).status_code == 200
    async with httpx.AsyncClient(base_url=gateways[1], headers={"Cookie": f"visitor_session={cookie}"}) as replay:
        refused = await replay.post("/v2/chats", json={})
        assert refused.status_code == 401


async def test_dev_login_answers_a_token_and_console_session(gateways):
    async with httpx.AsyncClient(base_url=gateways[0]) as browser:
        bad = await browser.post("/api/v1/auth/login", json={"email": "waiter@restaurante.com", "password": "nope"})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "AUTH_REQUIRED"
        ok = await browser.post(
            "/api/v1/auth/login", json={"email": "waiter@restaurante.com", "password": "password123"}
        )
        assert ok.status_code == 200
        token = ok.json()["accessToken"]
        assert ok.cookies.get("console_session")
    sock = RelaySocket(gateways[1], auth={"token": token})
    async with sock:
        connected = await sock.wait_for("connected")
        assert connected["user"]["tenantId"] == "rest-a" and connected["user"]["roles"] == ["waiter"]


async def test_unknown_session_cookie_is_refused(gateways):
    sock = RelaySocket(gateways[0], headers={"Cookie": "visitor_session=forged"})
    with pytest.raises(Exception, match=r"(?i)unknown|connect"):
        await sock.connect(timeout=5)
