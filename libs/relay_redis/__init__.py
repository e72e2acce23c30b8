"""Redis clients from REDIS_URL, the same way python-socketio's adapter reads it.

`redis://`, `rediss://` and `unix://` URLs name one server. `redis+sentinel://[:pw@]h1:p1,h2:p2/db/service`
names Redis Sentinels: every command goes to the master they currently elect, and after a failover new
connections find the promoted replica by themselves (docs/redis.md). The URL is parsed by the adapter's
own parser, so sessions, rate limits, presence and the Socket.IO adapter always agree on the master.
"""

from __future__ import annotations

from urllib.parse import urlparse

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel
from socketio.redis_manager import parse_redis_sentinel_url

SENTINEL_SCHEMES = frozenset({"redis+sentinel", "valkey+sentinel"})


def connect(url: str, *, decode_responses: bool = True) -> Redis:
    """A client of the server `url` names, or of the master its Sentinels elect."""
    if urlparse(url).scheme not in SENTINEL_SCHEMES:
        return Redis.from_url(url, decode_responses=decode_responses)
    sentinels, service, connection_kwargs = parse_redis_sentinel_url(url)
    if not service:
        raise ValueError(f"a Sentinel URL names its service: redis+sentinel://host:port,.../db/SERVICE, not {url!r}")
    sentinel = Sentinel(sentinels, **connection_kwargs)  # type: ignore[no-untyped-call]
    master: Redis = sentinel.master_for(service, decode_responses=decode_responses)
    return master
