"""Handlers of attachment commands: begin → chunk x n → commit (or abort), info and read.

Who may: uploading needs the right to send in the chat, reading the right to read it; a file
attached to an internal note is for agents only.
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import UTC, datetime
from typing import Any

from relay_contracts import Envelope, ErrorCode, RelayError
from relay_contracts import files as f
from relay_contracts.envelope import iso

from relay_message import domain
from relay_message.adapters.files import FileRepo
from relay_message.handlers import Deps, Handler, _actor, _readable


def _repo(deps: Deps) -> FileRepo:
    if deps.files is None:
        raise RelayError(ErrorCode.UNAVAILABLE, "file storage is not configured")
    return deps.files


def public_file(stored: dict[str, Any]) -> dict[str, Any]:
    return {
        "fileId": stored["fileId"],
        "url": domain.file_url(stored["fileId"]),
        "fileName": stored["fileName"],
        "fileSize": stored["length"],
        "mimeType": stored["mimeType"],
        "chatId": stored["conversationId"],
        "chunks": math.ceil(stored["length"] / stored["chunkSize"]) if stored["length"] else 0,
        "sha256": stored.get("sha256"),
        "uploadedAt": iso(stored["uploadDate"]) if isinstance(stored["uploadDate"], datetime) else None,
    }


async def _own_upload(deps: Deps, env: Envelope, file_id: str) -> dict[str, Any]:
    user, _ = _actor(env)
    upload = await _repo(deps).upload(env.tenant, file_id)
    if upload is None or upload["uploader"] != user:
        raise RelayError(ErrorCode.NOT_FOUND, f"no upload {file_id} in progress", field="fileId")
    return upload


async def begin_upload(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = f.BeginUpload.model_validate(env.data)
    user, roles = _actor(env)
    conversation = await _readable(deps, env, cmd.conversationId)
    if not domain.can_send(conversation, user, roles):
        raise RelayError(ErrorCode.PERMISSION_DENIED, "you may not send to this chat", field="chatId")
    upload = {
        "_id": cmd.fileId,
        "tenant": env.tenant,
        "conversationId": cmd.conversationId,
        "fileName": cmd.fileName,
        "mimeType": cmd.mimeType,
        "maxBytes": cmd.maxBytes,
        "uploader": user,
        "createdAt": datetime.now(UTC),
    }
    if not await _repo(deps).begin(upload):
        existing = await _repo(deps).upload(env.tenant, cmd.fileId)
        if existing is None or existing["uploader"] != user:
            raise RelayError(ErrorCode.CONFLICT, "file id already in use", field="fileId")
    return {"fileId": cmd.fileId, "chunkBytes": f.CHUNK_BYTES}


async def upload_chunk(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = f.UploadChunk.model_validate(env.data)
    upload = await _own_upload(deps, env, cmd.fileId)
    try:
        data = base64.b64decode(cmd.data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RelayError(ErrorCode.VALIDATION_ERROR, "chunk is not base64", field="data") from exc
    if not data or len(data) > f.CHUNK_BYTES:
        raise RelayError(ErrorCode.VALIDATION_ERROR, f"a chunk holds 1..{f.CHUNK_BYTES} bytes", field="data")
    if cmd.n * f.CHUNK_BYTES + len(data) > upload["maxBytes"]:
        raise RelayError(ErrorCode.PAYLOAD_TOO_LARGE, f"file exceeds {upload['maxBytes']} bytes")
    await _repo(deps).put_chunk(cmd.fileId, cmd.n, data)
    return {"fileId": cmd.fileId, "n": cmd.n}


async def commit_upload(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = f.CommitUpload.model_validate(env.data)
    repo = _repo(deps)
    stored = await repo.get(env.tenant, cmd.fileId)
    if stored is not None:  # a redelivered commit: answer what the first one stored
        return public_file(stored)
    upload = await _own_upload(deps, env, cmd.fileId)
    assembled = await repo.assemble(cmd.fileId, cmd.chunks)
    if assembled is None or assembled[0] != cmd.length or assembled[1] != cmd.sha256:
        await repo.abort(cmd.fileId)
        raise RelayError(ErrorCode.VALIDATION_ERROR, "upload is incomplete or corrupt; start again", field="fileId")
    await repo.commit(upload, assembled[0], assembled[1], f.CHUNK_BYTES, datetime.now(UTC))
    stored = await repo.get(env.tenant, cmd.fileId)
    assert stored is not None
    return public_file(stored)


async def abort_upload(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = f.AbortUpload.model_validate(env.data)
    await _own_upload(deps, env, cmd.fileId)
    await _repo(deps).abort(cmd.fileId)
    return {"fileId": cmd.fileId, "aborted": True}


async def _readable_file(deps: Deps, env: Envelope, file_id: str) -> dict[str, Any]:
    _, roles = _actor(env)
    stored = await _repo(deps).get(env.tenant, file_id)
    if stored is None:
        raise RelayError(ErrorCode.NOT_FOUND, f"file {file_id} not found", field="fileId")
    await _readable(deps, env, stored["conversationId"])
    if stored["internal"] and not domain.is_agent(roles):
        raise RelayError(ErrorCode.PERMISSION_DENIED, "this file belongs to an internal note")
    return stored


async def file_info(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = f.FileRef.model_validate(env.data)
    return public_file(await _readable_file(deps, env, cmd.fileId))


async def read_chunk(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = f.ReadChunk.model_validate(env.data)
    await _readable_file(deps, env, cmd.fileId)
    data = await _repo(deps).read_chunk(cmd.fileId, cmd.n)
    if data is None:
        raise RelayError(ErrorCode.NOT_FOUND, f"chunk {cmd.n} of {cmd.fileId} not found", field="n")
    return {"fileId": cmd.fileId, "n": cmd.n, "data": base64.b64encode(data).decode()}


FILE_HANDLERS: dict[str, Handler] = {
    f.FILE_BEGIN: begin_upload,
    f.FILE_CHUNK: upload_chunk,
    f.FILE_COMMIT: commit_upload,
    f.FILE_ABORT: abort_upload,
    f.FILE_INFO: file_info,
    f.FILE_READ: read_chunk,
}
