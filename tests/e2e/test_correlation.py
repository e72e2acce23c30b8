"""The correlation id of a REST call is in the logs of every hop: gateway, message service, delivery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from relay_devstack import Stack

pytestmark = pytest.mark.e2e


def log_lines(stack: Stack, name: str, correlation_id: str) -> list[dict]:
    """Log lines of process `name` (`gateway-1`), or of every instance of a service (`message`)."""
    assert stack.config.log_dir is not None
    names = [name] if name in stack.procs else stack.instances(name)
    lines = []
    for process in names:
        for raw in (Path(stack.config.log_dir) / f"{process}.log").read_text().splitlines():
            if correlation_id in raw and raw.startswith("{"):
                lines.append(json.loads(raw))
    return lines


async def test_correlation_id_travels_from_rest_through_broker_to_delivery(stack, client_factory, mint):
    visitor = client_factory(mint("v-corr", "visitor"), 0)
    listener = client_factory(mint("a-corr", "agent"), 1)
    chat_id = (await visitor.post("/v2/chats", {}, expect=201))["chatId"]
    async with listener.socket() as sock:
        await sock.call("chat:join", {"chatId": chat_id})
        response = await visitor.http.post(
            "/v2/messages",
            json={"chatId": chat_id, "content": "trace me"},
            headers={**visitor._headers(), "X-Correlation-ID": "corr-trace-0001"},
        )
        assert response.headers["x-correlation-id"] == "corr-trace-0001"
        await sock.wait_for("message:new")

    handled = log_lines(stack, "message", "corr-trace-0001")
    assert any(line["event"] == "command.handled" and line["command"] == "message.send" for line in handled)
    delivered = log_lines(stack, "gateway-1", "corr-trace-0001")
    assert any(line["event"] == "delivery.emitted" and line["wire_event"] == "message:new" for line in delivered)
