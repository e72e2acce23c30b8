"""What any value from a client must be before a schema sees it (socket payloads, REST bodies, queries).

Schemas bound each field; this bounds what no schema names: nesting depth, integers no client or store
holds exactly, non-finite floats, and text that cannot be stored or forwarded (NUL, lone surrogates).
A refusal is VALIDATION_ERROR naming where the value was; nothing here recurses, so depth cannot crash it.
"""

from __future__ import annotations

import math
from typing import Any

from relay_contracts import ErrorCode, RelayError
from relay_contracts.messages import MAX_SAFE_INTEGER

MAX_DEPTH = 32


def _refuse(path: tuple[str | int, ...], reason: str) -> RelayError:
    field = ".".join(str(p) for p in path) or None
    return RelayError(ErrorCode.VALIDATION_ERROR, f"{field or 'payload'}: {reason}", field=field)


def _check_text(text: str, path: tuple[str | int, ...]) -> None:
    if "\x00" in text:
        raise _refuse(path, "contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _refuse(path, "contains a lone surrogate (not Unicode text)") from exc


def check_inbound(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise VALIDATION_ERROR if `value` (decoded JSON, maybe with binary parts) is not storable as is."""
    pending: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while pending:
        item, path = pending.pop()
        if len(path) > max_depth:
            raise _refuse(path[:max_depth], f"nested deeper than {max_depth} levels")
        if isinstance(item, str):
            _check_text(item, path)
        elif isinstance(item, bool) or item is None or isinstance(item, bytes | bytearray):
            continue
        elif isinstance(item, int):
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                raise _refuse(path, f"integer beyond ±{MAX_SAFE_INTEGER}")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise _refuse(path, "number is not finite")
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str):
                    _check_text(key, (*path, key))
                pending.append((child, (*path, str(key))))
        elif isinstance(item, list | tuple):
            pending.extend((child, (*path, index)) for index, child in enumerate(item))
