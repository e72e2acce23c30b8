"""What the token says about its user reaches other clients as the token said it: `avatar` in seed-000
events (finding 9) and roles as spelled (finding 10), while role checks ignore case."""

from __future__ import annotations

import asyncio
import time

import pytest
from relay_auth import mint_token

from tests.conftest import SECRET

pytestmark = pytest.mark.e2e

AVATAR = "https://cdn.example/u/ana.png"


def _token(user: str, roles: list[str], **extra: str) -> str:
    return mint_token(SECRET, user_id=user, roles=roles, tenant="acme", extra={"username": user, **extra})


async def test_channel_events_carry_the_senders_avatar(client_factory):
    ana = client_factory(_token("u-avatar-ana", ["member"], avatar=AVATAR), 0)
    bob = client_factory(_token("u-avatar-bob", ["member"]), 1)
    channel = await ana.post("/v2/channels", {"name": "avatars", "members": ["u-avatar-bob"]})
    async with ana.socket("/chat") as ana_sock, bob.socket("/chat") as bob_sock:
        await ana_sock.call("join_channel", {"channelId": channel["channelId"]})
        await bob_sock.call("join_channel", {"channelId": channel["channelId"]})
        sent = await ana_sock.call(
            "send_message", {"channelId": channel["channelId"], "text": "hi @bob", "mentions": ["u-avatar-bob"]}
        )
        assert sent["success"] is True, sent
        new = await bob_sock.wait_for("new_message", lambda e: e["message"]["id"] == sent["messageId"])
        assert new["author"] == {"id": "u-avatar-ana", "username": "u-avatar-ana", "avatar": AVATAR}
        mention = await bob_sock.wait_for("mention_received", lambda e: e["messageId"] == sent["messageId"])
        assert mention["author"]["avatar"] == AVATAR
        await ana_sock.call(
            "edit_message", {"channelId": channel["channelId"], "messageId": sent["messageId"], "text": "edited"}
        )
        edited = await bob_sock.wait_for("message_edited", lambda e: e["messageId"] == sent["messageId"])
        assert edited["editedBy"]["avatar"] == AVATAR
        await ana_sock.call("create_thread", {"channelId": channel["channelId"], "messageId": sent["messageId"]})
        thread = await bob_sock.wait_for("thread_created", lambda e: e["parentMessageId"] == sent["messageId"])
        assert thread["createdBy"]["avatar"] == AVATAR


async def test_roles_are_echoed_as_the_token_spelled_them(client_factory):
    admin = client_factory(_token("u-roles-admin", ["ADMIN", "Agent"]), 0)
    async with admin.socket() as sock:
        connected = await sock.wait_for("connected")
        assert connected["user"]["roles"] == ["ADMIN", "Agent"]
        # role checks ignore case: an `ADMIN` is an admin; presence counts the role as spelled
        deadline = time.monotonic() + 10
        stats = await admin.get("/websocket/users-stats")
        while "ADMIN" not in stats["usersByRole"] and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            stats = await admin.get("/websocket/users-stats")
        assert stats["usersByRole"]["ADMIN"] >= 1 and "admin" not in stats["usersByRole"], stats
