"""MongoDB storage of conversations and messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from relay_message.domain import PREVIEW_CHARS, user_field

__all__ = [
    "CLIENT_CONFLICT",
    "SEQ_CONFLICT",
    "ConversationRepo",
    "MessageRepo",
    "MessageStats",
    "conversation_key",
    "user_field",
]

# why a batch insert stopped: a seq another writer took first, or a clientMessageId already stored
SEQ_CONFLICT, CLIENT_CONFLICT = "seq", "client"


def conversation_key(tenant: str, conversation_id: str) -> str:
    return f"{tenant}/{conversation_id}"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class MessageStats:
    """What `count` new messages of one conversation change in it: unread per member, last seq, previews.

    Internal notes only become the agents' preview (`public_preview` is the last message everyone may see),
    so no list shows one to a visitor."""

    tenant: str
    conversation_id: str
    count: int
    last_seq: int
    at: datetime
    unread: dict[str, int]
    agents_preview: dict[str, Any]
    public_preview: dict[str, Any] | None


def _stats_update(stats: MessageStats) -> UpdateOne:
    inc: dict[str, int] = {"stats.totalMessages": stats.count}
    for user, n in stats.unread.items():
        inc[f"stats.unread.{user_field(user)}"] = n
    new: dict[str, Any] = {"stats.lastMessageAt": stats.at, "lastActivityAt": stats.at}
    new["preview.agents"] = stats.agents_preview
    if stats.public_preview is not None:
        new["preview.all"] = stats.public_preview
    key = {"_id": conversation_key(stats.tenant, stats.conversation_id)}
    return UpdateOne(key, {"$max": {"lastSeq": stats.last_seq}, "$inc": inc, "$set": new})


class ConversationRepo:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._col = db["conversations"]

    async def ensure_indexes(self) -> None:
        await self._col.create_index([("tenant", ASCENDING), ("participants.userId", ASCENDING)])
        await self._col.create_index([("tenant", ASCENDING), ("type", ASCENDING), ("status", ASCENDING)])

    async def get(self, tenant: str, conversation_id: str) -> dict[str, Any] | None:
        return await self._col.find_one({"_id": conversation_key(tenant, conversation_id)})

    async def insert(self, doc: dict[str, Any]) -> bool:
        """Insert a new conversation; False when the id is taken in this tenant."""
        doc = {"_id": conversation_key(doc["tenant"], doc["conversationId"]), **doc}
        try:
            await self._col.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def claim_status(self, tenant: str, conversation_id: str, expected: str, new: str) -> bool:
        """Compare-and-set of the status: True only for the writer that moved it."""
        result = await self._col.update_one(
            {"_id": conversation_key(tenant, conversation_id), "status": expected}, {"$set": {"status": new}}
        )
        return result.modified_count == 1

    async def get_many(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Several conversations in one query, by (tenant, conversation id); the missing ones are absent."""
        ids = [conversation_key(tenant, cid) for tenant, cid in keys]
        docs = await self._col.find({"_id": {"$in": ids}}).to_list()
        return {(d["tenant"], d["conversationId"]): d for d in docs}

    async def record_many(self, stats: list[MessageStats]) -> None:
        """The stats of each conversation's new messages, one update each, all in one round trip."""
        if stats:
            await self._col.bulk_write([_stats_update(s) for s in stats], ordered=False)

    async def revise_preview(self, tenant: str, conversation_id: str, message_id: str, content: str) -> None:
        """A previewed message was edited or deleted (`content` ""): chat lists must not keep the old text."""
        for audience in ("agents", "all"):
            await self._col.update_one(
                {"_id": conversation_key(tenant, conversation_id), f"preview.{audience}.messageId": message_id},
                {"$set": {f"preview.{audience}.content": content[:PREVIEW_CHARS]}},
            )

    async def close(self, tenant: str, conversation_id: str, by: str, at: datetime) -> bool:
        """Move an open conversation to CLOSED; False when it already was."""
        result = await self._col.update_one(
            {"_id": conversation_key(tenant, conversation_id), "status": {"$ne": "CLOSED"}},
            {"$set": {"status": "CLOSED", "closedAt": at, "closedBy": by, "lastActivityAt": at}},
        )
        return result.modified_count == 1

    async def list_for(
        self,
        tenant: str,
        user_id: str,
        *,
        include_support_queue: bool,
        status: str | None = None,
        type_: str | None = None,
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"tenant": tenant, "participants.userId": user_id}
        if include_support_queue:
            query = {"tenant": tenant, "$or": [{"participants.userId": user_id}, {"type": "support"}]}
        if status is not None:
            query["status"] = status
        if type_ is not None:
            query["type"] = type_
        cursor = self._col.find(query).sort("lastActivityAt", DESCENDING).limit(500)
        return await cursor.to_list()

    async def set_unread(self, tenant: str, conversation_id: str, user_id: str, count: int) -> None:
        await self._col.update_one(
            {"_id": conversation_key(tenant, conversation_id)}, {"$set": {f"stats.unread.{user_field(user_id)}": count}}
        )

    async def add_participant(self, tenant: str, conversation_id: str, member: dict[str, Any]) -> dict[str, Any] | None:
        return await self._col.find_one_and_update(
            {"_id": conversation_key(tenant, conversation_id), "participants.userId": {"$ne": member["userId"]}},
            {"$push": {"participants": member}},
            return_document=ReturnDocument.AFTER,
        )

    async def list_channels(self, tenant: str, user_id: str, *, include_public: bool) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"tenant": tenant, "type": "channel", "participants.userId": user_id}
        if include_public:
            query = {
                "tenant": tenant,
                "type": "channel",
                "$or": [{"participants.userId": user_id}, {"visibility": "public"}],
            }
        return await self._col.find(query).sort("createdAt", ASCENDING).limit(1000).to_list()

    async def add_participants(self, tenant: str, conversation_id: str, members: list[dict[str, Any]]) -> list[str]:
        """Add each member not already in; returns the user ids that were added."""
        added = []
        for member in members:
            if await self.add_participant(tenant, conversation_id, member) is not None:
                added.append(member["userId"])
        return added


class MessageRepo:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._col = db["messages"]

    async def ensure_indexes(self) -> None:
        await self._col.create_index(
            [("tenant", ASCENDING), ("conversationId", ASCENDING), ("seq", ASCENDING)], unique=True, name="seq_unique"
        )
        await self._col.create_index(
            [
                ("tenant", ASCENDING),
                ("conversationId", ASCENDING),
                ("senderId", ASCENDING),
                ("clientMessageId", ASCENDING),
            ],
            unique=True,
            name="client_message_unique",
            partialFilterExpression={"clientMessageId": {"$type": "string"}},
        )
        await self._col.create_index([("tenant", ASCENDING), ("conversationId", ASCENDING), ("createdAt", ASCENDING)])
        await self._col.create_index([("tenant", ASCENDING), ("conversationId", ASCENDING), ("changedAt", ASCENDING)])

    async def find_by_client_id(
        self, tenant: str, conversation_id: str, sender: str, client_message_id: str
    ) -> dict[str, Any] | None:
        return await self._col.find_one(
            {
                "tenant": tenant,
                "conversationId": conversation_id,
                "senderId": sender,
                "clientMessageId": client_message_id,
            }
        )

    async def conversation_of(self, tenant: str, message_id: str) -> str | None:
        found = await self._col.find_one({"_id": message_id, "tenant": tenant}, {"conversationId": 1})
        return str(found["conversationId"]) if found else None

    def _unread_by(self, tenant: str, conversation_id: str, reader: str, include_internal: bool) -> dict[str, Any]:
        query: dict[str, Any] = {
            "tenant": tenant,
            "conversationId": conversation_id,
            "senderId": {"$ne": reader},
            "reads.userId": {"$ne": reader},
            "deleted": {"$ne": True},
        }
        if not include_internal:
            query["isInternal"] = {"$ne": True}
        return query

    async def mark_read(
        self,
        tenant: str,
        conversation_id: str,
        reader: str,
        at: datetime,
        *,
        message_id: str | None,
        include_internal: bool,
    ) -> list[str]:
        """Add `reader`'s receipt to one message or all they had not read; the ids that changed."""
        query = self._unread_by(tenant, conversation_id, reader, include_internal)
        if message_id is not None:
            query["_id"] = message_id
        ids = [d["_id"] for d in await self._col.find(query, {"_id": 1}).sort("seq", ASCENDING).to_list()]
        if ids:
            await self._col.update_many(
                {**query, "_id": {"$in": ids}},
                {"$push": {"reads": {"userId": reader, "at": at}}, "$set": {"deliveryState": "read"}},
            )
        return ids

    async def unread_count(self, tenant: str, conversation_id: str, reader: str, *, include_internal: bool) -> int:
        return int(await self._col.count_documents(self._unread_by(tenant, conversation_id, reader, include_internal)))

    async def last_seq(self, tenant: str, conversation_id: str) -> int:
        docs = (
            await self._col.find({"tenant": tenant, "conversationId": conversation_id}, {"seq": 1})
            .sort("seq", DESCENDING)
            .limit(1)
            .to_list()
        )
        return int(docs[0]["seq"]) if docs else 0

    async def insert_batch(self, docs: list[dict[str, Any]]) -> tuple[int, str | None]:
        """Insert in order, stopping at the first duplicate: (how many were stored, why it stopped or None)."""
        try:
            await self._col.insert_many(docs, ordered=True)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors") or []
            if not errors or errors[0].get("code") != 11000:
                raise
            first = errors[0]
            key = first.get("keyPattern") or first.get("keyValue") or {}
            conflict = SEQ_CONFLICT if "seq" in key or "seq_unique" in str(first.get("errmsg", "")) else CLIENT_CONFLICT
            return int(first.get("index", exc.details.get("nInserted", 0))), conflict
        return len(docs), None

    async def history(
        self,
        tenant: str,
        conversation_id: str,
        *,
        limit: int,
        after_seq: int | None,
        before_seq: int | None,
        date_from: datetime | None,
        include_internal: bool,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Messages in seq order and whether more exist beyond the page."""
        query: dict[str, Any] = {"tenant": tenant, "conversationId": conversation_id, "deleted": {"$ne": True}}
        if not include_internal:
            query["isInternal"] = {"$ne": True}
        seq_range: dict[str, int] = {}
        if after_seq is not None:
            seq_range["$gt"] = after_seq
        if before_seq is not None:
            seq_range["$lt"] = before_seq
        if seq_range:
            query["seq"] = seq_range
        if date_from is not None:
            query["createdAt"] = {"$gt": date_from}
        forward = after_seq is not None or date_from is not None
        cursor = self._col.find(query).sort("seq", ASCENDING if forward else DESCENDING).limit(limit + 1)
        docs = await cursor.to_list()
        has_more = len(docs) > limit
        docs = docs[:limit]
        if not forward:
            docs.reverse()
        return docs, has_more

    async def get(self, tenant: str, conversation_id: str, message_id: str) -> dict[str, Any] | None:
        return await self._col.find_one({"_id": message_id, "tenant": tenant, "conversationId": conversation_id})

    async def edit(self, tenant: str, message_id: str, changes: dict[str, Any], previous: dict[str, Any]) -> bool:
        """Apply `changes` and append the previous version to the edit history; False if deleted meanwhile."""
        result = await self._col.update_one(
            {"_id": message_id, "tenant": tenant, "deleted": {"$ne": True}},
            {"$set": {**changes, "changedAt": _now()}, "$push": {"edits": previous}},
        )
        return result.matched_count == 1

    async def tombstone(self, tenant: str, message_id: str, by: str, at: datetime) -> bool:
        """Remove the content for good, keep only the seq (so sync can report it); True for the first delete."""
        result = await self._col.update_one(
            {"_id": message_id, "tenant": tenant, "deleted": {"$ne": True}},
            {
                "$set": {
                    "deleted": True,
                    "deletedAt": at,
                    "changedAt": _now(),
                    "deletedBy": by,
                    "content": "",
                    "attachment": None,
                    "attachments": [],
                    "mentions": [],
                    "links": [],
                    "edits": [],
                    "reactions": [],
                }
            },
        )
        return result.modified_count == 1

    async def add_reaction(self, tenant: str, message_id: str, reaction: dict[str, Any]) -> bool:
        result = await self._col.update_one(
            {
                "_id": message_id,
                "tenant": tenant,
                "deleted": {"$ne": True},
                "reactions": {"$not": {"$elemMatch": {"userId": reaction["userId"], "emoji": reaction["emoji"]}}},
            },
            {"$push": {"reactions": reaction}, "$set": {"changedAt": _now()}},
        )
        return result.modified_count == 1

    async def remove_reaction(self, tenant: str, message_id: str, user_id: str, emoji: str) -> bool:
        result = await self._col.update_one(
            {"_id": message_id, "tenant": tenant, "reactions": {"$elemMatch": {"userId": user_id, "emoji": emoji}}},
            {"$pull": {"reactions": {"userId": user_id, "emoji": emoji}}, "$set": {"changedAt": _now()}},
        )
        return result.modified_count == 1

    async def mark_thread(self, tenant: str, message_id: str, thread: dict[str, Any]) -> bool:
        """Make a message a thread root; False when it already is one."""
        result = await self._col.update_one(
            {"_id": message_id, "tenant": tenant, "thread": None, "deleted": {"$ne": True}},
            {"$set": {"thread": thread, "changedAt": _now()}},
        )
        return result.modified_count == 1

    async def since(
        self, tenant: str, conversation_id: str, *, after_seq: int | None, date_from: datetime | None, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """Everything after a point in seq order, tombstones included (sync reports deletions too)."""
        query: dict[str, Any] = {"tenant": tenant, "conversationId": conversation_id, "isInternal": {"$ne": True}}
        if after_seq is not None:
            query["seq"] = {"$gt": after_seq}
        if date_from is not None:
            query["createdAt"] = {"$gt": date_from}
        docs = await self._col.find(query).sort("seq", ASCENDING).limit(limit + 1).to_list()
        return docs[:limit], len(docs) > limit

    async def changed_since(
        self, tenant: str, conversation_id: str, *, up_to_seq: int, since: datetime, limit: int
    ) -> list[dict[str, Any]]:
        """Messages at or before `up_to_seq` edited, reacted to, threaded or deleted after `since`."""
        query = {
            "tenant": tenant,
            "conversationId": conversation_id,
            "isInternal": {"$ne": True},
            "seq": {"$lte": up_to_seq},
            "changedAt": {"$gt": since},
        }
        return list(await self._col.find(query).sort("seq", ASCENDING).limit(limit).to_list())
