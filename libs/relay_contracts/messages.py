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
LOCATE_MESSAGE = "message.locate"

# event types
MESSAGE_CREATED = "message.created"
CONVERSATION_CREATED = "conversation.created"
CONVERSATION_STATUS_CHANGED = "conversation.status_changed"

MessageType = Literal["text", "image", "file", "audio", "video"]
# stored in English; dialects render their own words (seed-003 sends `alta`, `urgente`)
Priority = Literal["normal", "high", "urgent"]
Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-:@.]+$")]


# free-form extras a client attaches to a message (seed-003 `metadatos`): flat, small, storable as BSON
MetaKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
MetaValue = (
    Annotated[str, StringConstraints(max_length=1000)]
    | bool
    | Annotated[int, Field(ge=-(2**53), le=2**53)]
    | Annotated[float, Field(allow_inf_nan=False)]
    | None
)
Metadata = Annotated[dict[MetaKey, MetaValue], Field(max_length=32)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Attachment(Strict):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    fileName: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    fileSize: int = Field(ge=0, le=1_000_000_000)
    mimeType: Annotated[str, StringConstraints(min_length=3, max_length=127, pattern=r"^[\w.+-]+/[\w.+-]+$")]


class Permissions(Strict):
    """A participant's permissions; a field left None takes the role's default."""

    canSend: bool | None = None
    canDelete: bool | None = None
    canModerate: bool | None = None


class ParticipantSpec(Strict):
    userId: Id
    role: Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z_\-]+$")] = "member"
    permissions: Permissions | None = None  # None: the role's defaults


class CreateConversation(Strict):
    conversationId: Id
    type: Literal["support", "direct", "group", "channel"] = "support"
    subject: Annotated[str, StringConstraints(max_length=200)] | None = None
    # besides the creator (who is always a participant); seed-003 names roles and permissions
    participants: tuple[ParticipantSpec, ...] = Field(default=(), max_length=500)
    description: Annotated[str, StringConstraints(max_length=1000)] | None = None


class CheckAccess(Strict):
    conversationId: Id


class LocateMessage(Strict):
    """Which conversation a message is in (seed-003 names only the message when it reacts)."""

    messageId: Id


class SendMessage(Strict):
    conversationId: Id
    content: str = Field(default="", max_length=100_000)  # the configured limit is checked by the handler
    type: MessageType = "text"
    attachment: Attachment | None = None
    isInternal: bool = False
    clientMessageId: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    replyTo: Id | None = None
    priority: Priority = "normal"
    metadata: Metadata | None = None


class ListConversations(Strict):
    types: tuple[Literal["support", "direct", "group", "channel"], ...] | None = None
    memberOnly: bool = False  # True: only where the caller is a participant (no support queue for agents)


class GetHistory(Strict):
    conversationId: Id
    limit: int = Field(default=50, ge=1, le=200)
    afterSeq: int | None = Field(default=None, ge=0)
    before: int | None = Field(default=None, ge=1)
    dateFrom: str | None = None
