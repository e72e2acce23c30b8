"""In-memory stand-ins for the message service's repositories (unit tests only)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from pymongo.errors import DuplicateKeyError
from relay_contracts import Envelope
from relay_message.adapters.repo import SeqConflict


class FakeConversations:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}

    async def get(self, tenant: str, cid: str) -> dict[str, Any] | None:
        doc = self.docs.get((tenant, cid))
        return dict(doc) if doc else None

    async def insert(self, doc: dict[str, Any]) -> bool:
        key = (doc["tenant"], doc["conversationId"])
        if key in self.docs:
            return False
        self.docs[key] = dict(doc)
        return True

    async def claim_status(self, tenant: str, cid: str, expected: str, new: str) -> bool:
        doc = self.docs[(tenant, cid)]
        if doc["status"] != expected:
            return False
        doc["status"] = new
        return True

    async def record_message(self, tenant, cid, seq, at, sender, members, preview=None, internal=False) -> None:
        doc = self.docs[(tenant, cid)]
        doc["lastSeq"] = max(doc.get("lastSeq", 0), seq)
        unread = doc.setdefault("stats", {}).setdefault("unread", {})
        for user in members:
            if user != sender:
                unread[user] = unread.get(user, 0) + 1
        if preview is not None:
            doc.setdefault("preview", {})["agents"] = preview
            if not internal:
                doc["preview"]["all"] = preview

    async def add_participant(self, tenant: str, cid: str, member: dict[str, Any]) -> dict[str, Any] | None:
        doc = self.docs[(tenant, cid)]
        if any(p["userId"] == member["userId"] for p in doc["participants"]):
            return None
        doc["participants"].append(member)
        return dict(doc)


class FakeMessages:
    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.steal_next_seq = 0  # simulate another instance winning this many seq races

    def lock(self, tenant: str, cid: str) -> asyncio.Lock:
        return self._locks[f"{tenant}/{cid}"]

    async def find_by_client_id(self, tenant, cid, sender, client_id):
        return next(
            (
                d
                for d in self.docs
                if (d["tenant"], d["conversationId"], d["senderId"], d["clientMessageId"])
                == (tenant, cid, sender, client_id)
            ),
            None,
        )

    async def last_seq(self, tenant: str, cid: str) -> int:
        await asyncio.sleep(0)  # let concurrent senders interleave here, as real I/O would
        return max((d["seq"] for d in self.docs if (d["tenant"], d["conversationId"]) == (tenant, cid)), default=0)

    async def insert(self, doc: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        if self.steal_next_seq:
            self.steal_next_seq -= 1
            self.docs.append({**doc, "_id": f"other-{doc['seq']}", "senderId": "other", "clientMessageId": None})
            raise SeqConflict
        key = (doc["tenant"], doc["conversationId"])
        if any((d["tenant"], d["conversationId"], d["seq"]) == (*key, doc["seq"]) for d in self.docs):
            raise SeqConflict
        if await self.find_by_client_id(*key, doc["senderId"], doc["clientMessageId"]):
            raise DuplicateKeyError("client_message_unique")
        self.docs.append(dict(doc))


class Published:
    def __init__(self) -> None:
        self.events: list[tuple[str, Envelope]] = []

    async def __call__(self, routing_key: str, event: Envelope) -> None:
        self.events.append((routing_key, event))

    def of_type(self, event_type: str) -> list[Envelope]:
        return [e for _, e in self.events if e.type == event_type]
