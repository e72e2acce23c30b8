"""Commands of attachments: an upload travels as begin → chunk x n → commit (or abort).

The gateway never touches MongoDB; it streams a file to the message service in chunks of
`CHUNK_BYTES` (GridFS's default chunk size, so each command is one GridFS chunk), base64 in JSON.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from relay_contracts.messages import MAX_SAFE_INTEGER, Id, Strict

FILE_BEGIN = "file.begin"
FILE_CHUNK = "file.chunk"
FILE_COMMIT = "file.commit"
FILE_ABORT = "file.abort"
FILE_INFO = "file.info"
FILE_READ = "file.read"

CHUNK_BYTES = 255 * 1024
FileId = Annotated[str, StringConstraints(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
MimeType = Annotated[str, StringConstraints(min_length=3, max_length=127, pattern=r"^[\w.+-]+/[\w.+-]+$")]


class BeginUpload(Strict):
    fileId: FileId
    conversationId: Id
    fileName: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    mimeType: MimeType
    maxBytes: int = Field(ge=1, le=MAX_SAFE_INTEGER)


class UploadChunk(Strict):
    fileId: FileId
    n: int = Field(ge=0, le=100_000)
    data: str = Field(max_length=CHUNK_BYTES * 2)  # base64


class CommitUpload(Strict):
    fileId: FileId
    chunks: int = Field(ge=1, le=100_000)
    length: int = Field(ge=1, le=MAX_SAFE_INTEGER)
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class AbortUpload(Strict):
    fileId: FileId


class FileRef(Strict):
    fileId: FileId


class ReadChunk(Strict):
    fileId: FileId
    n: int = Field(ge=0, le=100_000)
