"""What an upload must be before it is stored: an allowed type whose bytes look like that type."""

from __future__ import annotations

import re
import unicodedata

from relay_contracts import ErrorCode, RelayError

# leading bytes of the types a browser would render; a mismatch means a disguised file
MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/pdf": (b"%PDF-",),
    "application/zip": (b"PK\x03\x04", b"PK\x05\x06"),
}
TEXT_TYPES = frozenset({"text/plain", "text/csv"})


def base_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_type(mime: str, head: bytes, allowed: tuple[str, ...]) -> None:
    """Refuse a type outside the allow-list, or content that is not what it claims to be."""
    if mime not in allowed:
        raise RelayError(ErrorCode.VALIDATION_ERROR, f"file type {mime or 'unknown'!r} is not allowed", field="file")
    if mime in MAGIC and not any(head.startswith(sig) for sig in MAGIC[mime]):
        raise RelayError(ErrorCode.VALIDATION_ERROR, f"file content is not {mime}", field="file")
    if mime == "image/webp" and not (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        raise RelayError(ErrorCode.VALIDATION_ERROR, "file content is not image/webp", field="file")
    if mime in TEXT_TYPES:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # a multi-byte character cut at the end of `head` is fine
                raise RelayError(ErrorCode.VALIDATION_ERROR, f"file content is not {mime}", field="file") from exc
        if b"\x00" in head:
            raise RelayError(ErrorCode.VALIDATION_ERROR, f"file content is not {mime}", field="file")


def clean_file_name(raw: str | None) -> str:
    """The name without any path or control characters, at most 255 characters."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    return name[:255] or "file"
