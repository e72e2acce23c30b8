"""structlog setup and correlation ids.

JSON lines when stdout is not a TTY (production, CI, task dev's children), coloured console
otherwise. Entry points bind ``correlation_id`` (and ``sid``/``user_id``/``tenant``) with
``bind_contextvars``; everything logged inside that task carries them.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.contextvars import (
    bind_contextvars,
    bound_contextvars,
    clear_contextvars,
    get_contextvars,
    reset_contextvars,
)
from ulid import ULID

__all__ = [
    "bind_contextvars",
    "bound_contextvars",
    "clear_contextvars",
    "configure_logging",
    "current_correlation_id",
    "get_contextvars",
    "get_logger",
    "new_correlation_id",
    "reset_contextvars",
]


def configure_logging(service: str, level: str = "INFO", fmt: str = "auto") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # libraries (aio-pika, uvicorn, socketio) log through stdlib; keep them at WARNING
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


def new_correlation_id() -> str:
    return str(ULID())


def current_correlation_id() -> str | None:
    value = get_contextvars().get("correlation_id")
    return str(value) if value else None
