"""Per-user rate limits shared by every gateway replica: a sliding-window log in Redis.

`RATE_LIMITS="message=30/10s,typing=100/10s,join=off"` overrides the defaults rule by rule.
A rule counts accepted hits in the last `window`; a hit over the limit is refused with
`RATE_LIMITED` and `retryAfterMs` (when the oldest counted hit leaves the window) and is not
counted itself, so a flood does not extend its own lockout. Redis's clock decides, not the replica's.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError
from relay_contracts import ErrorCode, RelayError
from relay_log import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Rule:
    limit: int
    window_ms: int


DEFAULT_LIMITS: dict[str, Rule | None] = {
    "message": Rule(30, 10_000),  # messages sent (REST or socket)
    "typing": Rule(100, 10_000),  # typing:start / typing:stop
    "join": Rule(30, 10_000),  # room and chat joins
    "sync": Rule(30, 10_000),  # gap recovery requests
    "history": Rule(60, 10_000),  # history pages (REST GET of a conversation's messages)
    "read": Rule(60, 10_000),  # read receipts
    "query": Rule(30, 10_000),  # presence queries (active users, stats) answered by the presence service
    "rest_write": Rule(60, 10_000),  # every authenticated REST POST/PUT/PATCH/DELETE
    "upload": Rule(10, 60_000),  # files uploaded
    "auth": Rule(10, 60_000),  # auth:refresh
}

UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
RULE = re.compile(r"^(?P<name>[a-z_][a-z0-9_:-]*)=(?:(?P<off>off)|(?P<limit>\d+)/(?P<n>\d*)(?P<unit>ms|s|m|h))$")


def parse_limits(raw: str) -> dict[str, Rule | None]:
    """Defaults overridden by `name=count/window` (window like `10s`, `500ms`, `1m`) or `name=off`."""
    rules = dict(DEFAULT_LIMITS)
    for part in filter(None, (p.strip() for p in raw.split(","))):
        match = RULE.match(part)
        if match is None:
            raise ValueError(f"RATE_LIMITS: cannot read {part!r} (expected name=count/window or name=off)")
        if match["off"]:
            rules[match["name"]] = None
            continue
        window = int(match["n"] or 1) * UNITS_MS[match["unit"]]
        if int(match["limit"]) < 1 or window < 1:
            raise ValueError(f"RATE_LIMITS: {part!r} must allow at least one hit in a positive window")
        rules[match["name"]] = Rule(int(match["limit"]), window)
    return rules


# KEYS[1] the log; ARGV: window ms, limit, unique member. Returns 0 (accepted) or ms to wait.
SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


class RateLimiter:
    def __init__(self, redis: Redis, prefix: str, rules: dict[str, Rule | None]) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:ratelimit"
        self.rules = rules
        self._script = redis.register_script(SLIDING_WINDOW)

    async def hit(self, rule_name: str, subject: str) -> None:
        """Count one hit of `subject` (e.g. `tenant/user`) against a rule; raises RATE_LIMITED when over."""
        rule = self.rules.get(rule_name)
        if rule is None:
            return
        key = f"{self._prefix}:{rule_name}:{subject}"
        try:
            wait_ms = int(await self._script(keys=[key], args=[rule.window_ms, rule.limit, secrets.token_hex(8)]))
        except RedisError as exc:
            raise RelayError(ErrorCode.UNAVAILABLE, "rate limiter unavailable (Redis)") from exc
        if wait_ms > 0:
            log.info("ratelimit.refused", rule=rule_name, retry_after_ms=wait_ms)
            raise RelayError(
                ErrorCode.RATE_LIMITED,
                f"too many {rule_name} requests: {rule.limit} per {rule.window_ms} ms",
                retryAfterMs=wait_ms,
            )
