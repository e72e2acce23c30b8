"""A storm of agents joining one support chat asks the message service once; anyone else asks each time."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from relay_auth import Principal
from relay_contracts import ErrorCode, RelayError
from relay_gateway.access import AgentGrants
from relay_gateway.context import Gateway


class Bus:
    def __init__(self, answer: dict[str, Any] | RelayError) -> None:
        self.answer = answer
        self.asked: list[str] = []
        self.release = asyncio.Event()

    async def call(self, principal: Principal, command: str, data: dict[str, Any]) -> dict[str, Any]:
        self.asked.append(principal.user_id)
        await self.release.wait()
        if isinstance(self.answer, RelayError):
            raise self.answer
        return self.answer


class Gw:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus


def agent(n: int) -> Principal:
    return Principal(f"agent-{n}", "acme", frozenset({"agent"}))


async def storm(bus: Bus, principals: list[Principal]) -> list[BaseException | None]:
    grants = AgentGrants()
    gw = cast(Gateway, Gw(bus))
    joins = [asyncio.create_task(grants.check(gw, p, "c1")) for p in principals]
    await asyncio.sleep(0)
    bus.release.set()
    return list(await asyncio.gather(*joins, return_exceptions=True))


async def test_agents_joining_a_support_chat_together_ask_once():
    bus = Bus({"conversationId": "c1", "agentsMayRead": True})
    assert await storm(bus, [agent(n) for n in range(50)]) == [None] * 50
    assert bus.asked == ["agent-0"]


async def test_a_chat_only_its_members_may_read_is_asked_by_every_agent():
    bus = Bus({"conversationId": "c1", "agentsMayRead": False})
    await storm(bus, [agent(n) for n in range(3)])
    assert sorted(bus.asked) == ["agent-0", "agent-1", "agent-2"]


async def test_a_visitor_always_asks_and_a_refusal_reaches_everyone():
    bus = Bus(RelayError(ErrorCode.NOT_FOUND, "no such chat"))
    outcomes = await storm(bus, [agent(0), agent(1), Principal("v", "acme", frozenset({"visitor"}))])
    assert all(isinstance(o, RelayError) and o.code == ErrorCode.NOT_FOUND for o in outcomes)
    assert sorted(bus.asked) == ["agent-0", "agent-1", "v"]


@pytest.mark.parametrize("tenant", ["acme", "other"])
async def test_a_grant_holds_for_its_tenant_only(tenant):
    bus = Bus({"conversationId": "c1", "agentsMayRead": True})
    bus.release.set()
    grants = AgentGrants()
    gw = cast(Gateway, Gw(bus))
    await grants.check(gw, agent(0), "c1")
    await grants.check(gw, Principal("agent-9", tenant, frozenset({"agent"})), "c1")
    assert len(bus.asked) == (1 if tenant == "acme" else 2)
