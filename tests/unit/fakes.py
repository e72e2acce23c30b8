"""In-memory stand-ins for the message service's repositories (unit tests only)."""

from __future__ import annotations

import asyncio
from typing import Any

from relay_contracts import Envelope
from relay_message.adapters.repo import CLIENT_CONFLICT, SEQ_CONFLICT


class FakeConversations:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}
        self.stats_updates = 0

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

    async def get_many(self, keys):
        return {key: dict(self.docs[key]) for key in keys if key in self.docs}

    async def record_many(self, stats) -> None:
        self.stats_updates += 1
        for s in stats:
            doc = self.docs[(s.tenant, s.conversation_id)]
            doc["lastSeq"] = max(doc.get("lastSeq", 0), s.last_seq)
            totals = doc.setdefault("stats", {})
            totals["totalMessages"] = totals.get("totalMessages", 0) + s.count
            counts = totals.setdefault("unread", {})
            for user, n in s.unread.items():
                counts[user] = counts.get(user, 0) + n
            doc.setdefault("preview", {})["agents"] = s.agents_preview
            if s.public_preview is not None:
                doc["preview"]["all"] = s.public_preview

    async def revise_preview(self, tenant: str, cid: str, message_id: str, content: str) -> None:
        for preview in self.docs[(tenant, cid)].get("preview", {}).values():
            if preview.get("messageId") == message_id:
                preview["content"] = content

    async def add_participant(self, tenant: str, cid: str, member: dict[str, Any]) -> dict[str, Any] | None:
        doc = self.docs[(tenant, cid)]
        if any(p["userId"] == member["userId"] for p in doc["participants"]):
            return None
        doc["participants"].append(member)
        return dict(doc)


class FakeMessages:
    """Messages with the two unique indexes of the real store: (conversation, seq) and the client id."""

    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []
        self.steal_next_seq = 0  # simulate another instance winning this many seq races
        self.inserts: list[int] = []  # the size of each insert_batch call

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

    async def insert_batch(self, docs: list[dict[str, Any]]) -> tuple[int, str | None]:
        await asyncio.sleep(0)
        self.inserts.append(len(docs))
        for n, doc in enumerate(docs):
            key = (doc["tenant"], doc["conversationId"])
            if self.steal_next_seq:
                self.steal_next_seq -= 1
                self.docs.append({**doc, "_id": f"other-{doc['seq']}", "senderId": "other", "clientMessageId": None})
                return n, SEQ_CONFLICT
            if any((d["tenant"], d["conversationId"], d["seq"]) == (*key, doc["seq"]) for d in self.docs):
                return n, SEQ_CONFLICT
            if await self.find_by_client_id(*key, doc["senderId"], doc["clientMessageId"]):
                return n, CLIENT_CONFLICT
            self.docs.append(dict(doc))
        return len(docs), None

    async def exists(self, tenant: str, cid: str, message_id: str) -> bool:
        return any(d["_id"] == message_id and (d["tenant"], d["conversationId"]) == (tenant, cid) for d in self.docs)

    async def get(self, tenant: str, cid: str, message_id: str) -> dict[str, Any] | None:
        return next((d for d in self.docs if d["_id"] == message_id and d["tenant"] == tenant), None)


class Published:
    def __init__(self) -> None:
        self.events: list[tuple[str, Envelope]] = []

    async def __call__(self, routing_key: str, event: Envelope) -> None:
        self.events.append((routing_key, event))

    def of_type(self, event_type: str) -> list[Envelope]:
        return [e for _, e in self.events if e.type == event_type]
