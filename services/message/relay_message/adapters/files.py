"""Attachments in GridFS (bucket `attachments`), written chunk by chunk as upload commands arrive.

Each upload command carries exactly one GridFS chunk, so chunks go straight into
`attachments.chunks` (idempotent on `(files_id, n)`) from whichever service instance consumes the
command; the `attachments.files` document is written at commit, which is what makes the file exist
for any GridFS reader. Until then the upload's metadata waits in `attachments.uploads`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from bson import Binary, ObjectId
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

BUCKET = "attachments"


class FileRepo:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._files = db[f"{BUCKET}.files"]
        self._chunks = db[f"{BUCKET}.chunks"]
        self._uploads = db[f"{BUCKET}.uploads"]

    async def ensure_indexes(self) -> None:
        # the indexes GridFS drivers create, plus ours
        await self._chunks.create_index([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)
        await self._files.create_index([("filename", ASCENDING), ("uploadDate", ASCENDING)])

    async def begin(self, upload: dict[str, Any]) -> bool:
        try:
            await self._uploads.insert_one(upload)
        except DuplicateKeyError:
            return False
        return True

    async def upload(self, tenant: str, file_id: str) -> dict[str, Any] | None:
        return await self._uploads.find_one({"_id": file_id, "tenant": tenant})

    async def put_chunk(self, file_id: str, n: int, data: bytes) -> None:
        try:
            await self._chunks.insert_one({"_id": ObjectId(), "files_id": file_id, "n": n, "data": Binary(data)})
        except DuplicateKeyError:
            pass  # a redelivered chunk

    async def assemble(self, file_id: str, chunks: int) -> tuple[int, str, int] | None:
        """(length, sha256, chunk count) of the stored chunks, None if one of 0..chunks-1 is missing."""
        digest = hashlib.sha256()
        length = 0
        cursor = self._chunks.find({"files_id": file_id}).sort("n", ASCENDING)
        expected = 0
        async for chunk in cursor:
            if chunk["n"] != expected:
                return None
            data = bytes(chunk["data"])
            digest.update(data)
            length += len(data)
            expected += 1
        if expected != chunks:
            return None
        return length, digest.hexdigest(), expected

    async def commit(self, upload: dict[str, Any], length: int, sha256: str, chunk_size: int, at: datetime) -> None:
        doc = {
            "_id": upload["_id"],
            "length": length,
            "chunkSize": chunk_size,
            "uploadDate": at,
            "filename": upload["fileName"],
            "metadata": {
                "tenant": upload["tenant"],
                "conversationId": upload["conversationId"],
                "mimeType": upload["mimeType"],
                "uploader": upload["uploader"],
                "sha256": sha256,
                "internal": False,
            },
        }
        try:
            await self._files.insert_one(doc)
        except DuplicateKeyError:
            pass  # a redelivered commit
        await self._uploads.delete_one({"_id": upload["_id"]})

    async def abort(self, file_id: str) -> None:
        await self._chunks.delete_many({"files_id": file_id})
        await self._uploads.delete_one({"_id": file_id})

    async def get(self, tenant: str, file_id: str) -> dict[str, Any] | None:
        doc = await self._files.find_one({"_id": file_id, "metadata.tenant": tenant})
        if doc is None:
            return None
        meta = doc.get("metadata", {})
        return {
            "fileId": doc["_id"],
            "fileName": doc["filename"],
            "length": doc["length"],
            "chunkSize": doc["chunkSize"],
            "uploadDate": doc["uploadDate"],
            "conversationId": meta.get("conversationId"),
            "mimeType": meta.get("mimeType"),
            "uploader": meta.get("uploader"),
            "sha256": meta.get("sha256"),
            "internal": bool(meta.get("internal")),
        }

    async def mark_internal(self, tenant: str, file_id: str) -> None:
        await self._files.update_one({"_id": file_id, "metadata.tenant": tenant}, {"$set": {"metadata.internal": True}})

    async def read_chunk(self, file_id: str, n: int) -> bytes | None:
        chunk = await self._chunks.find_one({"files_id": file_id, "n": n})
        return bytes(chunk["data"]) if chunk is not None else None
