"""What the outage tests (process deaths, database, Redis and broker restarts) check the same way."""

from __future__ import annotations

import asyncio
import time
import urllib.request

from relay_sdk import RelayClient, RelaySocket


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
            return resp.status == 200
    except Exception:
        return False


async def wait_readiness(urls: list[str], *, ready_now: bool, timeout: float, what: str) -> None:
    """Until every process at `urls` reports ready (ready_now=True) or none does (False)."""
    deadline = time.monotonic() + timeout

    def reached() -> bool:
        states = [ready(u) for u in urls]
        return all(states) if ready_now else not any(states)

    while not reached():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


async def delivered_once_in_order(sock: RelaySocket, poster: RelayClient, chat_id: str, contents: list[str]) -> None:
    """The socket got each message once, in order, and history holds exactly them with seq 1..n."""
    got = await sock.wait_for("message:new", count=len(contents), timeout=15)
    assert [m["content"] for m in (got if isinstance(got, list) else [got])] == contents
    await asyncio.sleep(0.5)  # a duplicate would have arrived by now
    assert len(sock.received("message:new")) == len(contents)
    page = await poster.history(chat_id)
    assert [(m["seq"], m["content"]) for m in page["messages"]] == list(enumerate(contents, start=1))


async def active_users(sock: RelaySocket) -> list[str] | None:
    """Who `sock` sees online; None while presence cannot answer (refusals carry no `users`)."""
    answer = await sock.call("get-active-users")
    return sorted(u["userId"] for u in answer["users"]) if "users" in answer else None


async def wait_active(sock: RelaySocket, expected: list[str], timeout: float = 20) -> float:
    """Seconds until `sock` sees exactly `expected` online."""
    started = time.monotonic()
    while (seen := await active_users(sock)) != expected:
        assert time.monotonic() - started < timeout, seen
        await asyncio.sleep(0.2)
    return time.monotonic() - started
