"""Waiting on a condition against a deadline (the tests' alternative to sleeping)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(
    condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition", every: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not met within {timeout} s"
        await asyncio.sleep(every)
