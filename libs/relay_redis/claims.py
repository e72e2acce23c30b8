"""Command claims in Redis (relay_contracts.claims): `<instance>:cmd:<command id>` set once, `applied` by a
handler about to write or `cancelled` by a caller whose timer fired, with `SET NX`, so whichever comes first
decides. A whole group-commit batch is claimed in one round trip: one script call for all its commands."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError
from relay_contracts import ErrorCode, RelayError
from relay_contracts.claims import APPLIED, CANCELLED, CLAIM_TTL_SECONDS, Claims, Want

# per command: SET NX when it may start (ARGV[2 + i] is "1"), then GET what holds (ours, an earlier delivery's, or
# the caller's `cancelled`); a key is only ever set if absent, so the GET reads the winner. One call for the
# round: a pipeline of two commands per send cost the message service ~8 % of its CPU at 500 sends/s in
# redis-py's per-command packing and parsing
CLAIM_ALL = """
local fates = {}
for i, key in ipairs(KEYS) do
  if ARGV[2 + i] == '1' then
    redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2])
  end
  fates[i] = redis.call('GET', key)
end
return fates
"""


class RedisClaims(Claims):
    def __init__(
        self, redis: Redis, instance: str, *, ttl_seconds: float = CLAIM_TTL_SECONDS, timeout_seconds: float = 2.0
    ) -> None:
        self._redis = redis
        self._timeout = timeout_seconds  # a Redis that hangs decides nothing, like one that is down
        self._prefix = f"{instance}:cmd:"
        self._ttl_ms = int(ttl_seconds * 1000)
        self._claim_all = redis.register_script(CLAIM_ALL)

    def key(self, command_id: str) -> str:
        return self._prefix + command_id

    async def claim(self, wants: Sequence[Want]) -> list[bool]:
        if not wants:
            return []
        keys = [self.key(want.command_id) for want in wants]
        args = [APPLIED, self._ttl_ms, *("1" if want.start else "0" for want in wants)]
        try:
            async with asyncio.timeout(self._timeout):
                fates = await self._claim_all(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            raise RelayError(ErrorCode.UNAVAILABLE, "command claims unreachable; nothing was changed") from exc
        go = [_text(fate) == APPLIED for fate in fates]
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
