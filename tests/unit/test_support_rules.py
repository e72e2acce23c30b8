"""Pure rules of the support surface: rate-limit config, upload checks, note-safe stats, the SDK follower."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from relay_contracts import RelayError
from relay_gateway.ratelimit import DEFAULT_LIMITS, Rule, parse_limits
from relay_gateway.uploads import check_type, clean_file_name
from relay_message import domain
from relay_sdk import ChatFollower

ALLOWED = ("image/png", "application/pdf", "text/plain")


def test_rate_limits_override_defaults_rule_by_rule():
    rules = parse_limits("message=5/2s, typing=off,upload=3/500ms,custom=1/1h")
    assert rules["message"] == Rule(5, 2000)
    assert rules["typing"] is None
    assert rules["upload"] == Rule(3, 500)
    assert rules["custom"] == Rule(1, 3_600_000)
    assert rules["join"] == DEFAULT_LIMITS["join"]
    assert parse_limits("") == DEFAULT_LIMITS


@pytest.mark.parametrize("raw", ["message", "message=5", "message=0/1s", "message=5/0s", "message=five/1s", "=1/1s"])
def test_unreadable_rate_limits_fail_at_start(raw):
    with pytest.raises(ValueError, match="RATE_LIMITS"):
        parse_limits(raw)


@pytest.mark.parametrize(
    ("mime", "head"),
    [
        ("text/html", b"<html>"),  # not on the allow-list
        ("image/png", b"<svg onload=alert(1)>"),  # disguised
        ("application/pdf", b"MZ\x90\x00"),
        ("text/plain", b"\x00\x01binary"),
        ("text/plain", b"\xff\xfe\xfd not utf-8 at all"),
    ],
)
def test_disallowed_or_disguised_uploads_are_refused(mime, head):
    with pytest.raises(RelayError) as refused:
        check_type(mime, head, ALLOWED)
    assert refused.value.code.value == "VALIDATION_ERROR" and refused.value.field == "file"


def test_genuine_uploads_pass():
    check_type("image/png", b"\x89PNG\r\n\x1a\n....", ALLOWED)
    check_type("application/pdf", b"%PDF-1.7", ALLOWED)
    check_type("text/plain", "ñandú".encode()[:-1], ALLOWED)  # a character cut by the 512-byte head


def test_file_names_lose_paths_and_control_characters():
    assert clean_file_name("../../etc/passwd") == "passwd"
    assert clean_file_name("C:\\Users\\x\\foto.png") == "foto.png"
    assert clean_file_name("a\x00b\nc.txt") == "abc.txt"
    assert clean_file_name("") == "file" and clean_file_name("...") == "file"
    assert len(clean_file_name("x" * 1000)) == 255


def test_a_note_raises_only_the_agents_unread_counts():
    chat = {
        "participants": [
            {"userId": "v1", "role": "visitor"},
            {"userId": "a1", "role": "commercial"},
            {"userId": "a2", "role": "agent"},
        ]
    }
    assert domain.unread_audience(chat, "a1", is_internal=True) == ["a2"]
    assert domain.unread_audience(chat, "a1", is_internal=False) == ["v1", "a2"]


def test_chat_previews_show_a_note_to_agents_only():
    doc = {
        "conversationId": "c1",
        "preview": {"agents": {"content": "note", "isInternal": True}, "all": {"content": "hola"}},
        "stats": {"unread": {domain.user_field("v.1"): 3}},
    }
    assert domain.public_conversation(doc, viewer="v.1")["lastMessage"]["content"] == "hola"
    assert domain.public_conversation(doc, viewer="v.1")["unreadCount"] == 3
    assert domain.public_conversation(doc, viewer="a1", viewer_is_agent=True)["lastMessage"]["content"] == "note"


@pytest.mark.parametrize(
    ("url", "file_id"),
    [
        ("/v2/files/abcdef123456", "abcdef123456"),
        ("http://h:3000/v2/files/abcdef123456", "abcdef123456"),
        ("/v2/files/../x", None),
        ("https://cdn.example/x.png", None),
        ("javascript:alert(1)", None),
    ],
)
def test_attachment_urls(url, file_id):
    assert domain.uploaded_file_id(url) == file_id
    assert domain.is_web_link(url) == url.startswith(("http://", "https://"))


class FakeSocket:
    """Stands in for RelaySocket: answers chat:sync from `server` and lets the test push live events."""

    def __init__(self, server: list[dict[str, Any]]) -> None:
        self.server = server
        self.listeners: list[Any] = []

    def listen(self, event: str, callback: Any) -> None:
        self.listeners.append(callback)

    def unlisten(self, event: str, callback: Any) -> None:
        self.listeners.remove(callback)

    async def join(self, chat_id: str) -> dict[str, Any]:
        return {"success": True}

    async def sync(self, chat_id: str, after_seq: int) -> list[dict[str, Any]]:
        await asyncio.sleep(0)
        return [m for m in self.server if m["seq"] > after_seq]

    async def push(self, message: dict[str, Any]) -> None:
        for callback in self.listeners:
            await callback(message)


def msg(seq: int) -> dict[str, Any]:
    return {"chatId": "c1", "seq": seq, "messageId": f"m{seq}"}


async def test_follower_drops_duplicates_and_fills_gaps_from_sync():
    server = [msg(1), msg(2), msg(4), msg(5)]  # seq 3 is a note this user may not see
    sock = FakeSocket(server)
    follower = ChatFollower(sock, "c1")  # type: ignore[arg-type]
    await follower.start()
    assert [m["seq"] for m in follower.messages] == [1, 2, 4, 5] and follower.watermark == 5
    await sock.push(msg(5))  # a live copy of what sync gave
    assert follower.duplicates_dropped == 1
    server.extend([msg(6), msg(8)])
    await sock.push(msg(8))  # 6 was lost on the wire, 7 is a note: the jump triggers a sync
    await follower.wait_for_seq(8, timeout=2)
    assert [m["seq"] for m in follower.messages] == [1, 2, 4, 5, 6, 8]
    await sock.push(msg(6))
    assert len(follower.messages) == 6
    await sock.push({"chatId": "other", "seq": 9})  # another chat's event is not ours
    assert len(follower.messages) == 6
