"""seed-000 channels over REST: create, list, read, add members, history in the channel shape."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from relay_contracts import messages as m
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from relay_gateway.dialects.channels import channel_message
from relay_gateway.rest.edge import caller, documented, gateway, read_body
from relay_gateway.rest.support import HistoryQuery, history_page


class CreateChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    members: list[m.Id] = Field(default_factory=list, max_length=1000)
    moderators: list[m.Id] = Field(default_factory=list, max_length=100)
    visibility: m.Visibility = "members"
    channelId: m.Id | None = None


class AddMembersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    members: list[m.Id] = Field(min_length=1, max_length=1000)


def channel_payload(conversation: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": conversation["conversationId"],
        "channelId": conversation["conversationId"],
        "name": conversation.get("name") or conversation.get("subject"),
        "visibility": conversation.get("visibility", "members"),
        "members": [p["userId"] for p in conversation.get("participants", [])],
        "participants": conversation.get("participants", []),
        "createdBy": conversation.get("createdBy"),
        "createdAt": conversation.get("createdAt"),
        "lastSeq": conversation.get("lastSeq", 0),
        "lastMessageAt": conversation.get("lastMessageAt"),
        **({"unreadCount": conversation["unreadCount"]} if "unreadCount" in conversation else {}),
    }


@documented(body=CreateChannelIn)
async def create_channel(request: Request) -> JSONResponse:
    """Create a channel (the caller moderates it); 201 with the channel."""
    principal = await caller(request)
    gw = gateway(request)
    body = await read_body(request, CreateChannelIn, max_bytes=gw.settings.max_packet_bytes)
    data = {
        "conversationId": body.channelId or str(uuid.uuid4()),
        "name": body.name,
        "members": body.members,
        "moderators": body.moderators,
        "visibility": body.visibility,
    }
    channel = await gw.bus.call(principal, m.CREATE_CHANNEL, data)
    return JSONResponse(channel_payload(channel), status_code=201)


async def list_channels(request: Request) -> JSONResponse:
    """The caller's channels (`?public=true` adds public channels not joined yet): `{channels}`."""
    principal = await caller(request)
    include_public = request.query_params.get("public", "").lower() in ("1", "true", "yes")
    found = await gateway(request).bus.call(principal, m.LIST_CHANNELS, {"includePublic": include_public})
    return JSONResponse({"channels": [channel_payload(c) for c in found["channels"]]})


async def get_channel(request: Request) -> JSONResponse:
    """One channel, for its members (anyone of the tenant for a public channel)."""
    principal = await caller(request)
    channel = await gateway(request).bus.call(
        principal, m.CHECK_ACCESS, {"conversationId": request.path_params["channel_id"]}
    )
    return JSONResponse(channel_payload(channel))


@documented(body=AddMembersIn)
async def add_members(request: Request) -> JSONResponse:
    """Add members (channel moderators; any member of a public channel): the channel and `added`."""
    principal = await caller(request)
    gw = gateway(request)
    body = await read_body(request, AddMembersIn, max_bytes=gw.settings.max_packet_bytes)
    data = {"conversationId": request.path_params["channel_id"], "members": body.members}
    channel = await gw.bus.call(principal, m.ADD_MEMBERS, data)
    return JSONResponse({**channel_payload(channel), "added": channel["added"]})


@documented(query=HistoryQuery)
async def channel_messages(request: Request) -> JSONResponse:
    """A page of a channel's messages in `seq` order, in the /chat message shape: `{messages, hasMore}`."""
    page = await history_page(request, request.path_params["channel_id"])
    return JSONResponse({"messages": [channel_message(x) for x in page["messages"]], "hasMore": page["hasMore"]})


ROUTES = [
    Route(f"{prefix}{path}", handler, methods=[method])
    for prefix in ("/v2/channels", "/api/v1/channels")
    for path, handler, method in (
        ("", create_channel, "POST"),
        ("", list_channels, "GET"),
        ("/{channel_id}", get_channel, "GET"),
        ("/{channel_id}/members", add_members, "POST"),
        ("/{channel_id}/messages", channel_messages, "GET"),
    )
]
