"""Command claims in Redis (relay_contracts.claims): `<instance>:cmd:<command id>` set once, `applied` by a
handler about to write or `cancelled` by a caller whose timer fired, with `SET NX`, so whichever comes first
decides. A whole group-commit batch is claimed in one pipelined round trip."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError
from relay_contracts import ErrorCode, RelayError
from relay_contracts.claims import APPLIED, CANCELLED, CLAIM_TTL_SECONDS, Claims, Want


class RedisClaims(Claims):
    def __init__(
        self, redis: Redis, instance: str, *, ttl_seconds: float = CLAIM_TTL_SECONDS, timeout_seconds: float = 2.0
    ) -> None:
        self._redis = redis
        self._timeout = timeout_seconds  # a Redis that hangs decides nothing, like one that is down
        self._prefix = f"{instance}:cmd:"
        self._ttl_ms = int(ttl_seconds * 1000)

    def key(self, command_id: str) -> str:
        return self._prefix + command_id

    async def claim(self, wants: Sequence[Want]) -> list[bool]:
        if not wants:
            return []
        # per command: SET NX when it may start, then GET what holds (ours, an earlier delivery's, or the
        # caller's `cancelled`); a key is only ever set if absent, so the GET reads the winner
        pipe = self._redis.pipeline(transaction=False)
        for want in wants:
            if want.start:
                pipe.set(self.key(want.command_id), APPLIED, nx=True, px=self._ttl_ms)
            pipe.get(self.key(want.command_id))
        try:
            async with asyncio.timeout(self._timeout):
                results = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            raise RelayError(ErrorCode.UNAVAILABLE, "command claims unreachable; nothing was changed") from exc
        go: list[bool] = []
        at = 0
        for want in wants:
            at += 1 if want.start else 0
            go.append(_text(results[at]) == APPLIED)
            at += 1
        return go

    async def cancel(self, command_id: str) -> str:
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self.key(command_id), CANCELLED, nx=True, px=self._ttl_ms)
        pipe.get(self.key(command_id))
        async with asyncio.timeout(self._timeout):
            _, fate = await pipe.execute()
        # UNAVAILABLE only on a `cancelled` read back; anything else (a key whose TTL ran out between the two)
        # keeps the caller waiting, never answering "not applied" for what may be applied
        return CANCELLED if _text(fate) == CANCELLED else APPLIED


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str) else None
