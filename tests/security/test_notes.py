"""A hidden note is absent for non-agents on every path that takes a message id (issue 13, finding 6)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


async def test_a_visitor_cannot_learn_that_a_note_exists(client_factory, mint, storage):
    visitor = client_factory(mint("v-note-probe", "visitor"), 0)
    agent = client_factory(mint("a-note-probe", "agent"), 1)
    chat_id = (await visitor.open_chat())["chatId"]
    visible = await visitor.send(chat_id, "hello")
    note = await agent.send(chat_id, "internal: VIP", isInternal=True)
    before = await storage.snapshot()

    for ref in (note["messageId"], "no-such-message"):
        response = await visitor.http.post(
            "/v2/messages", json={"chatId": chat_id, "content": "re", "replyTo": ref}, headers=visitor._headers()
        )
        assert response.status_code == 404, (ref, response.text)
        assert response.json()["error"]["code"] == "NOT_FOUND"
        assert response.json()["error"]["message"] == f"message {ref} not found in this conversation"
    async with visitor.socket() as sock:
        for ref in (note["messageId"], "no-such-message"):
            read = await sock.call("marcar_leido", {"conversacionId": chat_id, "mensajeId": ref})
            assert read["success"] is False and read["error"]["code"] == "NOT_FOUND", (ref, read)
            react = await sock.call("agregar_reaccion", {"mensajeId": ref, "tipo": "like"})
            assert react["success"] is False and react["error"]["code"] == "NOT_FOUND", (ref, react)
    assert await storage.snapshot() == before
    # the same paths work for what the visitor may see, and for the agent on the note
    reply = await visitor.send(chat_id, "re", replyTo=visible["messageId"])
    agent_reply = await agent.send(chat_id, "re note", replyTo=note["messageId"], isInternal=True)
    assert reply["messageId"] and agent_reply["messageId"]
    assert (await storage.snapshot())["messages"] == before["messages"] + 2
