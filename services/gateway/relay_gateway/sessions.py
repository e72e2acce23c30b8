"""Server-side sessions in Redis behind opaque cookies (`console_session`, `visitor_session`)."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict

from redis.asyncio import Redis
from relay_auth import Principal

CONSOLE_COOKIE = "console_session"
VISITOR_COOKIE = "visitor_session"
SESSION_COOKIES = (CONSOLE_COOKIE, VISITOR_COOKIE)


class SessionStore:
    def __init__(self, redis: Redis, prefix: str, ttl_seconds: int) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:session:"
        self.ttl_seconds = ttl_seconds

    async def create(self, principal: Principal) -> str:
        session_id = secrets.token_urlsafe(32)
        body = asdict(principal)
        body["roles"] = sorted(principal.roles)
        body["role_names"] = list(principal.role_names)
        await self._redis.set(self._prefix + session_id, json.dumps(body), ex=self.ttl_seconds)
        return session_id

    async def get(self, session_id: str) -> Principal | None:
        if not session_id or len(session_id) > 128:
            return None
        raw = await self._redis.get(self._prefix + session_id)
        if raw is None:
            return None
        body = json.loads(raw)
        body["roles"] = frozenset(body.get("roles", []))
        body["role_names"] = tuple(body.get("role_names", []))
        return Principal(**body)

    async def delete(self, session_id: str) -> None:
        await self._redis.delete(self._prefix + session_id)
