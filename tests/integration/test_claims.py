"""Claims settle the race between a caller's timer and a handler's commit (SPEC §7: UNAVAILABLE means not
applied): real Redis, real RabbitMQ, the real RpcClient and serve_commands."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Connection, ConnectionPool, Redis
from relay_broker import Broker, RpcClient, serve_commands
from relay_broker import rpc as rpc_module
from relay_contracts import Envelope, ErrorCode, RelayError
from relay_contracts.claims import APPLIED, CANCELLED, Claims, Want
from relay_contracts.deadline import expired_error
from relay_redis.claims import RedisClaims

from tests.integration.test_broker import command
from tests.waiting import until

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


class CountingConnection(Connection):
    """Counts the writes to the Redis socket: one per round trip, however many commands it carries."""

    writes = 0

    async def send_packed_command(self, command, check_health=True):  # type: ignore[no-untyped-def]
        CountingConnection.writes += 1
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    pool = ConnectionPool.from_url(REDIS_URL, connection_class=CountingConnection)
    client = Redis(connection_pool=pool)
    yield client
    await client.aclose()
    await pool.disconnect()


@pytest.fixture
def claims(redis: Redis) -> RedisClaims:
    return RedisClaims(redis, f"it-claims-{uuid.uuid4().hex[:8]}", ttl_seconds=30)


async def test_one_claim_wins_and_a_whole_batch_costs_one_round_trip(claims: RedisClaims, redis: Redis):
    ids = [f"c{n}" for n in range(50)]
    assert await claims.cancel("c3") == CANCELLED  # this caller's timer came first
    await redis.ping()
    await claims.claim([Want("warm-up", start=True)])  # the first call of a process loads the script
    before = CountingConnection.writes
    go = await claims.claim([Want(i, start=i != "c4") for i in ids])
    assert CountingConnection.writes - before == 1, "a batch is claimed in one round trip"
    # c3 was cancelled; c4 is past its deadline and was never claimed; the rest are ours
    assert go == [i not in ("c3", "c4") for i in ids]
    assert await claims.cancel("c7") == APPLIED  # the caller's timer came second: it must wait for the reply
    assert await redis.get(claims.key("c7")) == b"applied"
    assert await redis.pttl(claims.key("c7")) > 20_000
    # a redelivery finds its own claim, in time or not
    assert await claims.claim([Want("c7", start=True), Want("c8", start=False)]) == [True, True]


async def test_claims_that_cannot_be_reached_let_nothing_be_written():
    down = RedisClaims(Redis.from_url("redis://127.0.0.1:1/0"), "it-claims-down")
    with pytest.raises(RelayError) as refused:
        await down.claim([Want("c1", start=True)])
    assert refused.value.code == ErrorCode.UNAVAILABLE


class Writer:
    """A handler that claims right before its write, as the send pipeline and the order service do; `hold`
    keeps it between its deadline check and its claim, `hold_after` between its claim and its write."""

    def __init__(self, claims: Claims) -> None:
        self.claims = claims
        self.hold = asyncio.Event()
        self.hold_after = asyncio.Event()
        self.hold.set()
        self.hold_after.set()
        self.reached: list[str] = []
        self.written: list[str] = []
        self.refused: list[str] = []
        self.fail_once_after_claim = False

    async def __call__(self, env: Envelope) -> dict:
        start = not env.expired()
        self.reached.append(env.id)
        await self.hold.wait()
        if not (await self.claims.claim([Want(env.id, start=start)]))[0]:
            self.refused.append(env.id)
            raise expired_error(env)
        await self.hold_after.wait()
        if self.fail_once_after_claim:
            self.fail_once_after_claim = False
            await until(env.expired, 10, "the command's deadline passes")
            raise RuntimeError("the process dies between its claim and its write")
        self.written.append(env.id)
        return {"written": env.id}


async def test_a_caller_whose_cancel_wins_answers_unavailable_and_the_handler_writes_nothing(
    broker: Broker, claims: RedisClaims, redis: Redis
):
    writer = Writer(claims)
    writer.hold.clear()
    await serve_commands(broker, "message", ["test.#"], {"test.write": writer}, claims=claims)
    rpc = RpcClient(broker, timeout=0.6, settle=0.3, claims=claims)
    await rpc.start()
    call = asyncio.create_task(rpc.call(command("test.write")))
    await until(lambda: writer.reached, 10, "the handler took the command")
    await until(call.done, 10, "the caller's timer fired")
    with pytest.raises(RelayError) as down:
        await call
    assert down.value.code == ErrorCode.UNAVAILABLE
    writer.hold.set()  # the handler, past its deadline check, now tries to claim: too late
    await until(lambda: writer.refused == writer.reached, 10, "the handler's claim lost")
    assert await redis.get(claims.key(writer.reached[0])) == b"cancelled"
    assert writer.written == []


async def test_a_caller_whose_handler_claimed_first_waits_for_the_reply_instead_of_answering_unavailable(
    broker: Broker, claims: RedisClaims
):
    writer = Writer(claims)
    writer.hold_after.clear()
    await serve_commands(broker, "message", ["test.#"], {"test.write": writer}, claims=claims)
    rpc = RpcClient(broker, timeout=0.6, settle=0.3, claims=claims)
    await rpc.start()
    late_before = rpc_module.CLAIMED_LATE._value.get()
    call = asyncio.create_task(rpc.call(command("test.write")))
    await until(lambda: rpc_module.CLAIMED_LATE._value.get() > late_before, 10, "the timer fired, claim held")
    assert not call.done()
    writer.hold_after.set()  # the write lands, long after the caller's timeout
    assert (await call)["written"] == writer.written[0]
    assert len(writer.written) == 1


async def test_a_claimed_command_whose_handler_died_is_applied_by_its_redelivery(broker: Broker, claims: RedisClaims):
    writer = Writer(claims)
    writer.fail_once_after_claim = True
    await serve_commands(broker, "message", ["test.#"], {"test.write": writer}, claims=claims)
    rpc = RpcClient(broker, timeout=1.0, settle=0.5, claims=claims)
    await rpc.start()
    # the first delivery claims, then dies past the deadline; the redelivery is expired yet claimed: it applies
    result = await rpc.call(command("test.write"))
    assert writer.written == [result["written"]]
    assert len(writer.reached) == 2


async def test_a_caller_that_cannot_reach_the_claims_never_answers_unavailable_for_a_claimed_command(
    broker: Broker, claims: RedisClaims
):
    writer = Writer(claims)
    writer.hold_after.clear()
    await serve_commands(broker, "message", ["test.#"], {"test.write": writer}, claims=claims)
    unreachable = RedisClaims(Redis.from_url("redis://127.0.0.1:1/0"), "it-claims-down")
    rpc = RpcClient(broker, timeout=0.6, settle=0.3, claims=unreachable, claimed_wait=1.5)
    await rpc.start()
    with pytest.raises(RelayError) as unknown:
        await rpc.call(command("test.write"))
    # the handler holds `applied`: the caller could not learn it, so it says "unknown", not "not applied"
    assert unknown.value.code == ErrorCode.INTERNAL
    assert unknown.value.details["outcome"] == "unknown"
    writer.hold_after.set()
    await until(lambda: len(writer.written) == 1, 10, "the claimed command is applied")


async def test_a_handler_that_cannot_reach_the_claims_writes_nothing_and_says_so(broker: Broker):
    unreachable = RedisClaims(Redis.from_url("redis://127.0.0.1:1/0"), "it-claims-down")
    writer = Writer(unreachable)
    await serve_commands(broker, "message", ["test.#"], {"test.write": writer}, claims=unreachable)
    rpc = RpcClient(broker, timeout=3, claims=unreachable)
    await rpc.start()
    with pytest.raises(RelayError) as down:
        await rpc.call(command("test.write"))
    assert down.value.code == ErrorCode.UNAVAILABLE
    assert writer.written == []
