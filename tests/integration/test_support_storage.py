"""Rate limiter on real Redis (shared by two replicas' limiters); attachments in GridFS on a MongoDB-wire server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import uuid

import pytest
from gridfs import AsyncGridFSBucket
from redis.asyncio import Redis
from relay_contracts import Envelope, RelayError
from relay_contracts import files as f
from relay_contracts.envelope import Actor
from relay_gateway.ratelimit import RateLimiter, Rule
from relay_message import files, handlers
from relay_message.adapters.files import BUCKET, FileRepo
from relay_message.adapters.repo import ConversationRepo, MessageRepo
from relay_message.handlers import Deps

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis():
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


async def test_sliding_window_is_shared_by_every_replica_and_reopens(redis):
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    rules = {"message": Rule(3, 400)}
    replica_a, replica_b = RateLimiter(redis, prefix, rules), RateLimiter(redis, prefix, rules)
    await replica_a.hit("message", "acme/u1")
    await replica_b.hit("message", "acme/u1")
    await replica_a.hit("message", "acme/u1")
    with pytest.raises(RelayError) as limited:
        await replica_b.hit("message", "acme/u1")
    assert limited.value.code.value == "RATE_LIMITED" and 0 < limited.value.details["retryAfterMs"] <= 400
    await replica_b.hit("message", "acme/u2")  # per user
    await replica_b.hit("message", "globex/u1")  # per tenant
    await replica_a.hit("unconfigured", "acme/u1")  # no rule, no limit
    # refused hits are not counted: once the window passes the user is served again
    await asyncio.sleep(limited.value.details["retryAfterMs"] / 1000 + 0.05)
    await replica_b.hit("message", "acme/u1")
    assert await redis.pttl(f"{prefix}:ratelimit:message:acme/u1") <= 400


def command(type_: str, user: str, roles: tuple[str, ...], **data) -> Envelope:
    return Envelope(type=type_, tenant="acme", correlationId="c", actor=Actor(userId=user, roles=roles), data=data)


async def test_an_upload_in_chunks_is_a_gridfs_file_any_driver_reads(db):
    async def publish(key: str, event: Envelope) -> None:
        pass

    deps = Deps(ConversationRepo(db), MessageRepo(db), publish, files=FileRepo(db))
    await deps.files.ensure_indexes()  # type: ignore[union-attr]
    await handlers.create_conversation(command("conversation.create", "v1", ("visitor",), conversationId="c1"), deps)
    data = os.urandom(f.CHUNK_BYTES * 2 + 1234)
    file_id = uuid.uuid4().hex
    begin = {
        "fileId": file_id,
        "conversationId": "c1",
        "fileName": "x.bin",
        "mimeType": "application/zip",
        "maxBytes": 10 * 1024 * 1024,
    }
    await files.begin_upload(command(f.FILE_BEGIN, "v1", ("visitor",), **begin), deps)
    pieces = [data[i : i + f.CHUNK_BYTES] for i in range(0, len(data), f.CHUNK_BYTES)]
    for n, piece in reversed(list(enumerate(pieces))):  # order does not matter, redelivery does not either
        chunk = {"fileId": file_id, "n": n, "data": base64.b64encode(piece).decode()}
        await files.upload_chunk(command(f.FILE_CHUNK, "v1", ("visitor",), **chunk), deps)
        await files.upload_chunk(command(f.FILE_CHUNK, "v1", ("visitor",), **chunk), deps)
    commit = {"fileId": file_id, "chunks": len(pieces), "length": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    stored = await files.commit_upload(command(f.FILE_COMMIT, "v1", ("visitor",), **commit), deps)
    assert stored["fileSize"] == len(data) and stored["url"] == f"/v2/files/{file_id}"

    bucket = AsyncGridFSBucket(db, bucket_name=BUCKET)
    stream = await bucket.open_download_stream(file_id)
    assert await stream.read() == data

    # a stranger may neither read it nor add to an upload of someone else
    with pytest.raises(RelayError) as denied:
        await files.file_info(command(f.FILE_INFO, "v2", ("visitor",), fileId=file_id), deps)
    assert denied.value.code.value == "PERMISSION_DENIED"


async def test_an_upload_over_its_limit_or_corrupt_is_refused_and_cleaned(db):
    async def publish(key: str, event: Envelope) -> None:
        pass

    deps = Deps(ConversationRepo(db), MessageRepo(db), publish, files=FileRepo(db))
    await handlers.create_conversation(command("conversation.create", "v1", ("visitor",), conversationId="c2"), deps)
    file_id = uuid.uuid4().hex
    begin = {"fileId": file_id, "conversationId": "c2", "fileName": "x", "mimeType": "text/plain", "maxBytes": 10}
    await files.begin_upload(command(f.FILE_BEGIN, "v1", ("visitor",), **begin), deps)
    too_big = {"fileId": file_id, "n": 0, "data": base64.b64encode(b"x" * 11).decode()}
    with pytest.raises(RelayError) as refused:
        await files.upload_chunk(command(f.FILE_CHUNK, "v1", ("visitor",), **too_big), deps)
    assert refused.value.code.value == "PAYLOAD_TOO_LARGE"
    ok = {"fileId": file_id, "n": 0, "data": base64.b64encode(b"hello").decode()}
    with pytest.raises(RelayError):
        await files.upload_chunk(command(f.FILE_CHUNK, "intruder", ("visitor",), **ok), deps)
    await files.upload_chunk(command(f.FILE_CHUNK, "v1", ("visitor",), **ok), deps)
    wrong = {"fileId": file_id, "chunks": 1, "length": 5, "sha256": "0" * 64}
    with pytest.raises(RelayError) as corrupt:
        await files.commit_upload(command(f.FILE_COMMIT, "v1", ("visitor",), **wrong), deps)
    assert corrupt.value.code.value == "VALIDATION_ERROR"
    assert await db[f"{BUCKET}.chunks"].count_documents({"files_id": file_id}) == 0
    assert await db[f"{BUCKET}.files"].count_documents({"_id": file_id}) == 0
