"""Who may join a conversation is the message service's decision (`conversation.access`). This replica
remembers the one answer that holds for every agent of a tenant — any agent may read a support chat —
so a storm of agents joining one chat asks once, not once per socket."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from relay_auth import Principal
from relay_contracts import messages as m

from relay_gateway.context import Gateway

GRANT_SECONDS = 30.0
MAX_GRANTS = 10_000


class AgentGrants:
    def __init__(self) -> None:
        self._granted: dict[tuple[str, str], float] = {}  # (tenant, conversation) -> until (monotonic)
        self._asking: dict[tuple[str, str], asyncio.Task[dict[str, Any]]] = {}

    async def check(self, gw: Gateway, principal: Principal, conversation_id: str) -> None:
        """Return when `principal` may read the conversation; raise the message service's refusal otherwise."""
        key = (principal.tenant, conversation_id)
        if principal.is_agent:
            if self._granted.get(key, 0.0) > time.monotonic():
                return
            asking = self._asking.get(key)
            if asking is not None:  # another agent's question is in flight: its answer holds for us too
                try:
                    await asyncio.shield(asking)
                except Exception:
                    pass  # ask for ourselves below
                if self._granted.get(key, 0.0) > time.monotonic():
                    return
        question = asyncio.ensure_future(gw.bus.call(principal, m.CHECK_ACCESS, {"conversationId": conversation_id}))
        if principal.is_agent:
            self._asking.setdefault(key, question)
        try:
            answer = await question
        finally:
            if self._asking.get(key) is question:
                del self._asking[key]
        if principal.is_agent and answer.get("agentsMayRead"):
            if len(self._granted) >= MAX_GRANTS:
                self._granted.clear()
            self._granted[key] = time.monotonic() + GRANT_SECONDS
