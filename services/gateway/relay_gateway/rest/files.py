"""Attachments: `POST /v2/files/upload` (multipart `file`, `chatId`) and `GET /v2/files/{fileId}`.

The gateway checks size and type, then streams the file to the message service as chunked
commands (it never touches MongoDB). Downloads are for members of the file's chat; a file of an
internal note is for agents only.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ValidationError
from relay_auth import Principal
from relay_contracts import ErrorCode, RelayError
from relay_contracts import files as f
from relay_contracts import messages as m
from relay_log import get_logger
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from relay_gateway.context import Gateway
from relay_gateway.rest.edge import caller, gateway
from relay_gateway.sockets.router import validation_error
from relay_gateway.uploads import base_type, check_type, clean_file_name

log = get_logger(__name__)

FORM_OVERHEAD_BYTES = 16 * 1024  # boundaries, part headers and the chatId field


class UploadForm(BaseModel):
    chatId: m.Id


class FilePath(BaseModel):
    fileId: f.FileId


async def _limited(request: Request, max_bytes: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise RelayError(ErrorCode.PAYLOAD_TOO_LARGE, f"upload exceeds {max_bytes} bytes")
        yield chunk


async def upload(request: Request) -> JSONResponse:
    """Multipart upload (`file`, `chatId`) of an attachment to GridFS; 201 with the attachment to send."""
    principal = await caller(request, limit="upload")
    gw = gateway(request)
    limit = gw.settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD_BYTES:
        raise RelayError(ErrorCode.PAYLOAD_TOO_LARGE, f"file exceeds {limit} bytes")
    if base_type(request.headers.get("content-type")) != "multipart/form-data":
        raise RelayError(ErrorCode.VALIDATION_ERROR, "send multipart/form-data with `file` and `chatId`", field="file")
    parser = MultiPartParser(
        request.headers, _limited(request, limit + FORM_OVERHEAD_BYTES), max_files=1, max_fields=4, max_part_size=1024
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise RelayError(ErrorCode.VALIDATION_ERROR, f"bad multipart body: {exc.message}", field="file") from exc
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise RelayError(ErrorCode.VALIDATION_ERROR, "`file` is required", field="file")
        try:
            chat_id = UploadForm.model_validate({"chatId": form.get("chatId")}).chatId
        except ValidationError as exc:
            raise validation_error(exc) from exc
        size = file.size if file.size is not None else 0
        if size > limit:
            raise RelayError(ErrorCode.PAYLOAD_TOO_LARGE, f"file exceeds {limit} bytes")
        if size == 0:
            raise RelayError(ErrorCode.VALIDATION_ERROR, "file is empty", field="file")
        mime = base_type(file.content_type)
        await file.seek(0)
        check_type(mime, await file.read(512), gw.settings.upload_mime_types)
        stored = await _store(gw, principal, file, chat_id, mime, clean_file_name(file.filename), limit)
    finally:
        await form.close()
    log.info("file.uploaded", file_id=stored["fileId"], size=stored["fileSize"], mime=mime)
    return JSONResponse(stored, status_code=201)


async def _store(
    gw: Gateway, principal: Principal, file: UploadFile, chat_id: str, mime: str, name: str, limit: int
) -> dict[str, Any]:
    file_id = uuid.uuid4().hex
    begin = {"fileId": file_id, "conversationId": chat_id, "fileName": name, "mimeType": mime, "maxBytes": limit}
    await gw.bus.call(principal, f.FILE_BEGIN, begin)
    try:
        await file.seek(0)
        digest, length, n = hashlib.sha256(), 0, 0
        while chunk := await file.read(f.CHUNK_BYTES):
            digest.update(chunk)
            length += len(chunk)
            data = base64.b64encode(chunk).decode()
            await gw.bus.call(principal, f.FILE_CHUNK, {"fileId": file_id, "n": n, "data": data})
            n += 1
        commit = {"fileId": file_id, "chunks": n, "length": length, "sha256": digest.hexdigest()}
        stored: dict[str, Any] = await gw.bus.call(principal, f.FILE_COMMIT, commit)
    except BaseException:
        try:
            await gw.bus.call(principal, f.FILE_ABORT, {"fileId": file_id})
        except Exception:
            log.warning("file.abort_failed", file_id=file_id)
        raise
    return {k: stored[k] for k in ("fileId", "url", "fileName", "fileSize", "mimeType", "chatId")}


async def download(request: Request) -> StreamingResponse:
    """Download an attachment (members of its chat only; `?token=` accepted for <img> links)."""
    principal = await caller(request, query_token=True)
    gw = gateway(request)
    try:
        file_id = FilePath.model_validate({"fileId": request.path_params["file_id"]}).fileId
    except ValidationError as exc:
        raise validation_error(exc) from exc
    info = await gw.bus.call(principal, f.FILE_INFO, {"fileId": file_id})

    async def body() -> AsyncIterator[bytes]:
        for n in range(info["chunks"]):
            chunk = await gw.bus.call(principal, f.FILE_READ, {"fileId": file_id, "n": n})
            yield base64.b64decode(chunk["data"])

    disposition = "inline" if info["mimeType"].startswith("image/") else "attachment"
    headers = {
        "Content-Length": str(info["fileSize"]),
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(info['fileName'])}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, max-age=3600",
        "ETag": f'"{info["sha256"]}"',
    }
    return StreamingResponse(body(), media_type=info["mimeType"], headers=headers)


ROUTES = [
    Route("/v2/files/upload", upload, methods=["POST"]),
    Route("/v2/files/{file_id}", download, methods=["GET"]),
]
