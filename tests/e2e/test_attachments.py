"""Attachments: upload into GridFS through the message service, member-only download, refusals."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest
from relay_sdk.client import RelayError

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(600 * 1024)  # three GridFS chunks
PDF = b"%PDF-1.4\n" + b"x" * 1000


async def test_upload_then_message_with_attachment_then_download(client_factory, mint):
    visitor = client_factory(mint("v-files", "visitor"), 0)
    agent = client_factory(mint("a-files", "commercial"), 1)
    chat_id = (await visitor.open_chat())["chatId"]
    async with agent.socket() as sock:
        await sock.join(chat_id)
        stored = await visitor.upload(chat_id, "foto.png", PNG, "image/png")
        assert stored["fileName"] == "foto.png" and stored["fileSize"] == len(PNG)
        assert stored["mimeType"] == "image/png" and stored["url"] == f"/v2/files/{stored['fileId']}"

        # seed-001's useFileUpload: then a message of type image carrying the attachment
        attachment = {"url": stored["url"], "fileName": "foto.png", "fileSize": 1, "mimeType": "image/png"}
        message = await visitor.send(chat_id, "Archivo: foto.png", type="image", attachment=attachment)
        assert message["type"] == "image"
        assert message["attachment"]["fileSize"] == len(PNG)  # the server's size, not the client's claim
        got = await sock.wait_for("message:new")
        assert got["attachment"] == message["attachment"]

        for client in (visitor, agent, client_factory(agent.token, 0)):
            response = await client.download(stored["url"])
            assert hashlib.sha256(response.content).digest() == hashlib.sha256(PNG).digest()
            assert response.headers["content-type"] == "image/png"
            assert response.headers["x-content-type-options"] == "nosniff"

    history = (await visitor.history(chat_id))["messages"]
    assert history[0]["attachment"]["url"] == stored["url"]


async def test_file_of_an_internal_note_is_for_agents_only(client_factory, mint):
    visitor = client_factory(mint("v-files-note", "visitor"), 0)
    agent = client_factory(mint("a-files-note", "agent"), 1)
    chat_id = (await visitor.open_chat())["chatId"]
    stored = await agent.upload(chat_id, "informe.pdf", PDF, "application/pdf")
    attachment = {k: stored[k] for k in ("url", "fileName", "fileSize", "mimeType")}
    await agent.send(chat_id, "informe interno", type="file", attachment=attachment, isInternal=True)
    assert (await agent.download(stored["url"])).content == PDF
    with pytest.raises(RelayError) as refused:
        await visitor.download(stored["url"])
    assert refused.value.status == 403 and refused.value.code == "PERMISSION_DENIED"


@pytest.mark.parametrize(
    ("name", "data", "mime", "status", "code"),
    [
        ("page.html", b"<html><script>alert(1)</script>", "text/html", 400, "VALIDATION_ERROR"),
        ("fake.png", b"<svg onload=alert(1)>" + b"x" * 100, "image/png", 400, "VALIDATION_ERROR"),
        ("empty.txt", b"", "text/plain", 400, "VALIDATION_ERROR"),
        ("big.pdf", b"%PDF-" + b"0" * (2 * 1024 * 1024), "application/pdf", 413, "PAYLOAD_TOO_LARGE"),
    ],
)
async def test_bad_uploads_are_refused_and_nothing_is_stored(client_factory, mint, name, data, mime, status, code):
    visitor = client_factory(mint(f"v-files-bad-{name}", "visitor"), 1)
    chat_id = (await visitor.open_chat())["chatId"]
    with pytest.raises(RelayError) as refused:
        await visitor.upload(chat_id, name, data, mime)
    assert refused.value.status == status and refused.value.code == code
    assert (await visitor.history(chat_id))["messages"] == []


async def test_non_members_can_neither_upload_nor_download(client_factory, mint, gateways):
    owner = client_factory(mint("v-files-owner", "visitor"), 0)
    stranger = client_factory(mint("v-files-stranger", "visitor"), 1)
    other_tenant = client_factory(mint("a-files-globex", "agent", tenant="globex"), 0)
    chat_id = (await owner.open_chat())["chatId"]
    stored = await owner.upload(chat_id, "notas.txt", "hola ñandú\n".encode(), "text/plain")

    with pytest.raises(RelayError) as upload_refused:
        await stranger.upload(chat_id, "x.txt", b"intruder", "text/plain")
    assert upload_refused.value.status == 403
    with pytest.raises(RelayError) as download_refused:
        await stranger.download(stored["url"])
    assert download_refused.value.status == 403
    with pytest.raises(RelayError) as hidden:
        await other_tenant.download(stored["url"])
    assert hidden.value.status == 404
    async with httpx.AsyncClient(base_url=gateways[1]) as anonymous:
        assert (await anonymous.get(stored["url"])).status_code == 401
    # a browser <img src> can carry the token in the query string
    async with httpx.AsyncClient(base_url=gateways[1]) as browser:
        ok = await browser.get(stored["url"], params={"token": owner.token})
        assert ok.status_code == 200 and ok.content == "hola ñandú\n".encode()

    # an attachment must be an upload of this very chat (or an http(s) link)
    other_chat = (await owner.open_chat())["chatId"]
    for url in (stored["url"], "javascript:alert(1)", "/v2/files/doesnotexist1234"):
        attachment = {"url": url, "fileName": "n.txt", "fileSize": 3, "mimeType": "text/plain"}
        with pytest.raises(RelayError) as bad:
            await owner.send(other_chat, "see file", type="file", attachment=attachment)
        assert bad.value.status == 400 and bad.value.body["error"]["field"] == "attachment.url"
    assert (await owner.history(other_chat))["messages"] == []
