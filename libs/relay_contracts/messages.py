"""Commands and events of conversations and messages (SPEC §3).

Commands are imperative (`message.send`), events past tense (`message.created`). These models
validate the `data` of an envelope; the gateway validates client input with the same models so
that a refusal names the field the client sent.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# command types (routing keys on relay.commands)
CREATE_CONVERSATION = "conversation.create"
CHECK_ACCESS = "conversation.access"
SEND_MESSAGE = "message.send"
GET_HISTORY = "message.history"
LIST_CONVERSATIONS = "conversation.list"
CLOSE_CONVERSATION = "conversation.close"
MARK_CONVERSATION_READ = "conversation.mark_read"

# event types
MESSAGE_CREATED = "message.created"
CONVERSATION_CREATED = "conversation.created"
CONVERSATION_STATUS_CHANGED = "conversation.status_changed"

MessageType = Literal["text", "image", "file", "audio", "video"]
Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-:@.]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Attachment(Strict):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    fileName: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    fileSize: int = Field(ge=0, le=1_000_000_000)
    mimeType: Annotated[str, StringConstraints(min_length=3, max_length=127, pattern=r"^[\w.+-]+/[\w.+-]+$")]


class CreateConversation(Strict):
    conversationId: Id
    type: Literal["support", "direct", "group", "channel"] = "support"
    subject: Annotated[str, StringConstraints(max_length=200)] | None = None


class CheckAccess(Strict):
    conversationId: Id


class SendMessage(Strict):
    conversationId: Id
    content: str = Field(default="", max_length=100_000)  # the configured limit is checked by the handler
    type: MessageType = "text"
    attachment: Attachment | None = None
    isInternal: bool = False
    clientMessageId: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    replyTo: Id | None = None


class GetHistory(Strict):
    conversationId: Id
    limit: int = Field(default=50, ge=1, le=200)
    afterSeq: int | None = Field(default=None, ge=0)
    before: int | None = Field(default=None, ge=1)
    dateFrom: str | None = None


class ListConversations(Strict):
    status: Literal["PENDING", "IN_PROGRESS", "CLOSED"] | None = None
    type: Literal["support", "direct", "group", "channel"] | None = None


class CloseConversation(Strict):
    conversationId: Id


class MarkConversationRead(Strict):
    conversationId: Id
