"""Background work kept alive until it finishes: the loop holds tasks only weakly, so a task nobody
references can be collected mid-flight. One set per owner; a finished task leaves it by itself."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class TaskSet(set[asyncio.Task[Any]]):
    def spawn(self, work: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        task = asyncio.create_task(work, name=name)
        self.add(task)
        task.add_done_callback(self.discard)
        return task
