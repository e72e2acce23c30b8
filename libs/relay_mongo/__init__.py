"""MongoDB access through pymongo's async client (works against mongod or any wire-compatible server)."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError

# the database is unreachable (not: the query was wrong): worth answering UNAVAILABLE and retrying
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (ConnectionFailure, AutoReconnect, ServerSelectionTimeoutError)


def connect(
    url: str, database: str, *, timeout_ms: int = 3000
) -> tuple[AsyncMongoClient[dict[str, Any]], AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        url,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        tz_aware=True,
        w="majority",
        appname="relay",
    )
    return client, client[database]


async def ping(db: AsyncDatabase[dict[str, Any]]) -> bool:
    try:
        await db.command("ping")
    except Exception:
        return False
    return True
