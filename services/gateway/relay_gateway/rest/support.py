"""seed-001 REST: `/v2/chats` (open, list, get, close), `/v2/messages`, `/v2/messages/chat/{chatId}`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from relay_contracts import messages as m
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from relay_gateway.dialects.support import message_payload
from relay_gateway.rest.edge import caller, documented, gateway, read_body, read_query
from relay_gateway.sockets.router import validation_error


class OpenChat(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: Annotated[str, StringConstraints(max_length=200)] | None = None


class PostMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chatId: m.Id
    content: str = ""
    type: m.MessageType = "text"
    attachment: m.Attachment | None = None
    isInternal: bool = False
    clientMessageId: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    replyTo: m.Id | None = None


class HistoryQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=50, ge=1, le=200)
    afterSeq: int | None = Field(default=None, ge=0, le=m.MAX_SAFE_INTEGER)
    before: int | None = Field(default=None, ge=1, le=m.MAX_SAFE_INTEGER)
    dateFrom: str | None = Field(default=None, max_length=64)


def chat_payload(conversation: dict[str, Any]) -> dict[str, Any]:
    return {
        "chatId": conversation["conversationId"],
        "id": conversation["conversationId"],
        "subject": conversation.get("subject"),
        "status": conversation["status"],
        "participants": conversation.get("participants", []),
        "createdAt": conversation.get("createdAt"),
        "lastMessageAt": conversation.get("lastMessageAt"),
        "lastSeq": conversation.get("lastSeq", 0),
        **({"unreadCount": conversation["unreadCount"]} if "unreadCount" in conversation else {}),
        **({"lastMessage": _preview(conversation["lastMessage"])} if "lastMessage" in conversation else {}),
        **({k: conversation[k] for k in ("closedAt", "closedBy") if k in conversation}),
    }


def _preview(preview: dict[str, Any] | None) -> dict[str, Any] | None:
    if preview is None:
        return None
    keys = ("messageId", "seq", "senderId", "type", "content", "isInternal", "sentAt")
    return {k: preview.get(k) for k in keys}


class ChatListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status: Literal["PENDING", "IN_PROGRESS", "CLOSED"] | None = None


@documented(body=OpenChat)
async def open_chat(request: Request) -> JSONResponse:
    """Open a support chat (status PENDING; the caller is its first participant); 201 with the chat."""
    principal = await caller(request)
    gw = gateway(request)
    body = await read_body(request, OpenChat, max_bytes=gw.settings.max_packet_bytes)
    conversation = await gw.bus.call(
        principal,
        m.CREATE_CONVERSATION,
        {"conversationId": str(uuid.uuid4()), "type": "support", "subject": body.subject},
    )
    return JSONResponse(chat_payload(conversation), status_code=201)


@documented(query=ChatListQuery)
async def list_chats(request: Request) -> JSONResponse:
    """The caller's support chats (agents: also the tenant's queue), newest first, with unread counts."""
    principal = await caller(request)
    gw = gateway(request)
    query = read_query(request, ChatListQuery)
    answer = await gw.bus.call(
        principal, m.LIST_CONVERSATIONS, {"type": "support", **query.model_dump(exclude_none=True)}
    )
    chats = [chat_payload(c) for c in answer["conversations"]]
    return JSONResponse({"chats": chats, "total": len(chats)})


async def get_chat(request: Request) -> JSONResponse:
    """One chat the caller may read."""
    principal = await caller(request)
    gw = gateway(request)
    chat = await gw.bus.call(principal, m.CHECK_ACCESS, {"conversationId": _chat_id(request)})
    return JSONResponse(chat_payload(chat))


async def close_chat(request: Request) -> JSONResponse:
    """Close a chat (agents); announces `chat:status` CLOSED."""
    principal = await caller(request)
    gw = gateway(request)
    chat = await gw.bus.call(principal, m.CLOSE_CONVERSATION, {"conversationId": _chat_id(request)})
    return JSONResponse(chat_payload(chat))


async def mark_chat_read(request: Request) -> JSONResponse:
    """Mark everything in a chat as seen by the caller: their `unreadCount` drops to 0; answers the chat."""
    principal = await caller(request)
    gw = gateway(request)
    chat = await gw.bus.call(principal, m.MARK_CONVERSATION_READ, {"conversationId": _chat_id(request)})
    return JSONResponse(chat_payload(chat))


def _chat_id(request: Request) -> str:
    try:
        return ChatPath.model_validate({"chatId": request.path_params["chat_id"]}).chatId
    except ValidationError as exc:
        raise validation_error(exc) from exc


class ChatPath(BaseModel):
    chatId: m.Id


@documented(body=PostMessage)
async def post_message(request: Request) -> JSONResponse:
    """Send a message to a chat the caller belongs to; 201 with the stored message and its `seq`."""
    principal = await caller(request, limit="message")
    gw = gateway(request)
    body = await read_body(request, PostMessage, max_bytes=gw.settings.max_packet_bytes)
    data = body.model_dump(exclude={"chatId"}, exclude_none=True)
    data["conversationId"] = body.chatId
    # without a client id, this request's own id makes a broker redelivery idempotent
    data.setdefault("clientMessageId", f"req-{uuid.uuid4()}")
    message = await gw.bus.call(principal, m.SEND_MESSAGE, data)
    return JSONResponse(message_payload(message), status_code=201)


async def history_page(request: Request, conversation_id: str) -> dict[str, Any]:
    """One page of a conversation's history for the caller, `{messages, hasMore}` in `seq` order, as
    the message service keeps it (every dialect's history route renders it in its own shape)."""
    principal = await caller(request, limit="history")
    query = read_query(request, HistoryQuery)
    data = {"conversationId": conversation_id, **query.model_dump(exclude_none=True)}
    page: dict[str, Any] = await gateway(request).bus.call(principal, m.GET_HISTORY, data)
    return page


@documented(query=HistoryQuery)
async def chat_history(request: Request) -> JSONResponse:
    """A page of a chat's history in `seq` order: `{messages, hasMore}` (notes only for agents)."""
    page = await history_page(request, _chat_id(request))
    return JSONResponse({"messages": [message_payload(x) for x in page["messages"]], "hasMore": page["hasMore"]})


ROUTES = [
    Route("/v2/chats", open_chat, methods=["POST"]),
    Route("/v2/chats", list_chats, methods=["GET"]),
    Route("/v2/chats/{chat_id}", get_chat, methods=["GET"]),
    Route("/v2/chats/{chat_id}/close", close_chat, methods=["POST"]),
    Route("/v2/chats/{chat_id}/read", mark_chat_read, methods=["POST"]),
    Route("/v2/messages", post_message, methods=["POST"]),
    Route("/v2/messages/chat/{chat_id}", chat_history, methods=["GET"]),
]
