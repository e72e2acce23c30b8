"""SPEC §7 when the gateway's timer and a handler's commit race: a post answered 503 is never applied, and
a post whose handler claimed it before the timer fired is answered 201 (late), stored once.

The race is produced on purpose: a 2 s RPC timeout and the test-only `TEST_COMMIT_DELAYS` hook, which slows
each write between its deadline check and its claim, or between its claim and its write, in a fixed cycle:
- `0/0`: an ordinary write, answered in time;
- `0.1/3`: claimed at once, written 3 s later: the gateway's timer fires in between and must wait (201);
- `3.5/0`: deadline checked in time, claim tried 3.5 s later: the gateway's cancel has won, nothing is written
  (503). Before claims this one was answered 503 and applied anyway.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from relay_devstack import Stack
from relay_sdk import RelayClient
from relay_sdk.client import RelayError

from tests.e2e.conftest import relay_stack

pytestmark = pytest.mark.e2e

TIMEOUT = 2.0
POSTS = 9  # three turns of the delay cycle


@pytest.fixture(scope="module")
def racing_stack(tmp_path_factory):
    instance = f"t-claims-{uuid.uuid4().hex[:8]}"
    env = {
        "RATE_LIMITS": "message=off,rest_write=off",
        "RPC_TIMEOUT_SECONDS": str(TIMEOUT),
        "RPC_SETTLE_SECONDS": "1",
        "TEST_COMMIT_DELAYS": "0/0,0.1/3,3.5/0",
    }
    logs = tmp_path_factory.mktemp("claims-logs")
    # one instance per service: the delay cycle of one process meets the posts in order
    with relay_stack(instance, logs, services=("message", "order"), env=env, service_instances=1) as running:
        yield running


@dataclass
class Answer:
    key: str
    status: int
    seconds: float


async def post_one_by_one(write: Callable[[int, str], Awaitable[object]]) -> list[Answer]:
    answers = []
    for n in range(POSTS):
        key = f"k{n}-{uuid.uuid4().hex[:6]}"
        started = time.monotonic()
        try:
            await write(n, key)
            status = 201
        except RelayError as exc:
            status = exc.status
        answers.append(Answer(key, status, time.monotonic() - started))
    return answers


def check(answers: list[Answer], stored: list[str]) -> None:
    assert {a.status for a in answers} <= {201, 503}, answers
    refused = {a.key for a in answers if a.status == 503}
    accepted = {a.key for a in answers if a.status == 201}
    assert refused & set(stored) == set(), f"answered 503 yet applied: {sorted(refused & set(stored))}"
    assert accepted <= set(stored), "answered 201 yet not stored"
    assert len(stored) == len(set(stored)), "stored twice"
    # both sides of the race happened: a claimed write answered after the timeout, and a cancel that won
    assert any(a.status == 201 and a.seconds > TIMEOUT for a in answers), answers
    assert refused, answers


async def test_posts_answered_503_in_the_race_were_not_applied_and_late_201s_stored_once(racing_stack: Stack, mint):
    urls = racing_stack.gateway_urls
    visitor = RelayClient(urls[0], token=mint("v-claims", "visitor"))
    posters = [visitor, RelayClient(urls[1], token=visitor.token)]
    chat = (await visitor.post("/v2/chats", {}, expect=201))["chatId"]

    async def post(n: int, key: str) -> None:
        body = {"chatId": chat, "content": f"m{n}", "clientMessageId": key}
        await posters[n % 2].post("/v2/messages", body, expect=201)

    answers = await post_one_by_one(post)
    page = await visitor.history(chat, limit=200, afterSeq=0)
    messages = page["messages"]
    check(answers, [m["clientMessageId"] for m in messages])
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1)), "seq has a gap"
    for client in posters:
        await client.close()


async def test_orders_answered_503_in_the_race_were_not_created_and_late_201s_created_once(racing_stack: Stack, mint):
    urls = racing_stack.gateway_urls
    token = mint("w-claims", "WAITER", tenant=f"rest-{uuid.uuid4().hex[:6]}", claim="restaurantId")
    waiters = [RelayClient(url, token=token) for url in urls]

    async def create(n: int, key: str) -> None:
        # no Idempotency-Key: the case where a client told "not applied" that retries would make a duplicate
        await waiters[n % 2].post("/api/v1/orders", {"tableSessionId": key}, expect=201)

    answers = await post_one_by_one(create)
    orders = await waiters[0].get("/api/v1/orders", params={"limit": 500})
    check(answers, [o["tableSessionId"] for o in orders])
    for waiter in waiters:
        await waiter.close()
