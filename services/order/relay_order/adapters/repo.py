"""MongoDB storage of orders: one document per order, written by compare-and-set on `version`.

The document also carries its outbox: the events of each change are written in the same update as
the change, numbered per order (`eventSeq`), and published afterwards in that order; `publishedSeq`
marks how far publishing got. So an event is never announced before its change is durable, a crash
between write and publish is repaired by the next command on the order, and two writers racing on
one order publish their events in the order their changes were stored.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from relay_order.domain import Item, Order

KEEP_REQUESTS = 200  # request ids remembered per order for idempotent retries


def order_key(tenant: str, order_id: str) -> str:
    return f"{tenant}/{order_id}"


def to_order(doc: dict[str, Any]) -> Order:
    return Order(
        orderId=doc["orderId"],
        restaurantId=doc["tenant"],
        tableSessionId=doc["tableSessionId"],
        status=doc["status"],
        createdAt=doc["createdAt"],
        updatedAt=doc["updatedAt"],
        createdBy=doc.get("createdBy", ""),
        items=tuple(Item(**i) for i in doc.get("items", [])),
        version=int(doc.get("version", 0)),
    )


def pending_events(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Outbox entries not yet known to be published, oldest first."""
    published = int(doc.get("publishedSeq", 0))
    return sorted((e for e in doc.get("outbox", []) if e["seq"] > published), key=lambda e: e["seq"])


class OrderRepo:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._col = db["orders"]

    async def ensure_indexes(self) -> None:
        await self._col.create_index([("tenant", ASCENDING), ("status", ASCENDING), ("createdAt", DESCENDING)])
        await self._col.create_index([("tenant", ASCENDING), ("createdAt", DESCENDING)])
        await self._col.create_index(
            [("tenant", ASCENDING), ("createRequestId", ASCENDING)],
            unique=True,
            name="create_request_unique",
            partialFilterExpression={"createRequestId": {"$type": "string"}},
        )

    async def get(self, tenant: str, order_id: str) -> dict[str, Any] | None:
        return await self._col.find_one({"_id": order_key(tenant, order_id)})

    async def find_created_by_request(self, tenant: str, request_id: str) -> dict[str, Any] | None:
        return await self._col.find_one({"tenant": tenant, "createRequestId": request_id})

    async def insert(self, order: Order, *, request_id: str | None) -> None:
        """Store a new order; raises DuplicateKeyError when this create request was already stored."""
        await self._col.insert_one(new_document(order, request_id))

    async def save(
        self,
        previous: dict[str, Any],
        order: Order,
        events: list[dict[str, Any]],
        request: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        """Write `order` if nobody changed the stored one since `previous` was read (compare-and-set on
        `version`). `events` (`{routingKey, envelope}`) join the outbox numbered after the stored ones.
        Returns the written document, or None when another writer got there first."""
        seq = int(previous.get("eventSeq", 0))
        numbered = []
        for event in events:
            seq += 1
            numbered.append({"seq": seq, **event})
        requests = list(previous.get("requests", []))
        if request is not None:
            requests = [*requests, request][-KEEP_REQUESTS:]
        update = {
            **_fields(order),
            "version": int(previous["version"]) + 1,
            "eventSeq": seq,
            "outbox": [*pending_events(previous), *numbered],
            "requests": requests,
        }
        result = await self._col.update_one({"_id": previous["_id"], "version": previous["version"]}, {"$set": update})
        if result.modified_count != 1:
            return None
        return {**previous, **update}

    async def mark_published(self, tenant: str, order_id: str, seq: int) -> None:
        await self._col.update_one({"_id": order_key(tenant, order_id)}, {"$max": {"publishedSeq": seq}})

    async def list(self, tenant: str, statuses: tuple[str, ...], limit: int) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"tenant": tenant}
        if statuses:
            query["status"] = {"$in": list(statuses)}
        cursor = self._col.find(query, {"outbox": 0, "requests": 0}).sort("createdAt", DESCENDING).limit(limit)
        return await cursor.to_list()


def new_document(order: Order, request_id: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": order_key(order.restaurantId, order.orderId),
        "tenant": order.restaurantId,
        **_fields(order),
        "orderId": order.orderId,
        "tableSessionId": order.tableSessionId,
        "createdAt": order.createdAt,
        "createdBy": order.createdBy,
        "version": 1,
        "eventSeq": 0,
        "publishedSeq": 0,
        "outbox": [],
        "requests": [],
    }
    if request_id is not None:
        doc["createRequestId"] = request_id
    return doc


def _fields(order: Order) -> dict[str, Any]:
    return {"status": order.status, "items": [asdict(i) for i in order.items], "updatedAt": order.updatedAt}


__all__ = ["DuplicateKeyError", "OrderRepo", "order_key", "pending_events", "to_order"]
