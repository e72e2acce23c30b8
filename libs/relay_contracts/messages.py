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
LOCATE_MESSAGE = "message.locate"
MARK_CONVERSATION_READ = "conversation.mark_read"

# event types
MESSAGE_CREATED = "message.created"
CONVERSATION_CREATED = "conversation.created"
CONVERSATION_STATUS_CHANGED = "conversation.status_changed"

MessageType = Literal["text", "image", "file", "audio", "video"]
# stored in English; dialects render their own words (seed-003 sends `alta`, `urgente`)
Priority = Literal["normal", "high", "urgent"]
Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-:@.]+$")]
# the largest integer every client (JavaScript) and store (BSON int64) holds exactly
MAX_SAFE_INTEGER = 2**53 - 1
# a position in a conversation: a JSON integer (not `true`), never beyond what a store holds
Seq = Annotated[int, Field(strict=True, ge=0, le=MAX_SAFE_INTEGER)]


# free-form extras a client attaches to a message (seed-003 `metadatos`): flat, small, storable as BSON
MetaKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
MetaValue = (
    Annotated[str, StringConstraints(max_length=1000)]
    | bool
    | Annotated[int, Field(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
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
    # seed-000 channels: thread replies, references, mentions (user ids), links
    threadId: Id | None = None
    parentMessageId: Id | None = None
    attachments: tuple[Annotated[str, StringConstraints(min_length=1, max_length=2048)], ...] = Field(
        default=(), max_length=20
    )
    mentions: tuple[Id, ...] = Field(default=(), max_length=50)
    links: tuple[Annotated[str, StringConstraints(min_length=1, max_length=2048)], ...] = Field(
        default=(), max_length=20
    )
    priority: Priority = "normal"
    metadata: Metadata | None = None


class GetHistory(Strict):
    conversationId: Id
    limit: int = Field(default=50, ge=1, le=200)
    afterSeq: Seq | None = None
    before: Annotated[Seq, Field(ge=1)] | None = None
    dateFrom: str | None = Field(default=None, max_length=64)


class ListConversations(Strict):
    status: Literal["PENDING", "IN_PROGRESS", "CLOSED"] | None = None
    type: Literal["support", "direct", "group", "channel"] | None = None
    memberOnly: bool = False  # True: only where the caller is a participant (no support queue for agents)


class CloseConversation(Strict):
    conversationId: Id


# --- channels (seed-000) and message changes: edit, delete, reactions, threads, sync ---------------------------------

CREATE_CHANNEL = "conversation.channel.create"
LIST_CHANNELS = "conversation.channel.list"
JOIN_CHANNEL = "conversation.channel.join"
ADD_MEMBERS = "conversation.members.add"
EDIT_MESSAGE = "message.edit"
DELETE_MESSAGE = "message.delete"
REACT_MESSAGE = "message.react"
CREATE_THREAD = "message.thread.create"
SYNC_MESSAGES = "message.sync"

MESSAGE_UPDATED = "message.updated"
MESSAGE_DELETED = "message.deleted"
REACTION_CHANGED = "message.reaction.changed"
THREAD_CREATED = "message.thread.created"
MESSAGE_MENTIONED = "message.mentioned"  # one per mentioned member, routed to that user
MEMBERS_ADDED = "conversation.members.added"

Visibility = Literal["public", "members"]
Link = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
AttachmentRef = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
# a reaction is one visible token: no whitespace, no control characters
Emoji = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\s\x00-\x1f\x7f]+$")]


class CreateChannel(Strict):
    conversationId: Id
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    members: tuple[Id, ...] = Field(default=(), max_length=1000)
    visibility: Visibility = "members"
    moderators: tuple[Id, ...] = Field(default=(), max_length=100)


class ListChannels(Strict):
    includePublic: bool = False  # also public channels the caller has not joined


class JoinChannel(Strict):
    conversationId: Id


class AddMembers(Strict):
    conversationId: Id
    members: tuple[Id, ...] = Field(min_length=1, max_length=1000)


class EditMessage(Strict):
    conversationId: Id
    messageId: Id
    content: str = Field(max_length=100_000)
    attachments: tuple[AttachmentRef, ...] | None = Field(default=None, max_length=20)
    mentions: tuple[Id, ...] | None = Field(default=None, max_length=50)
    links: tuple[Link, ...] | None = Field(default=None, max_length=20)


class DeleteMessage(Strict):
    conversationId: Id
    messageId: Id


class ReactToMessage(Strict):
    conversationId: Id
    messageId: Id
    emoji: Emoji
    action: Literal["add", "remove"] = "add"


class CreateThread(Strict):
    conversationId: Id
    messageId: Id  # the root message; the thread's id is the root's id
    name: Annotated[str, StringConstraints(max_length=120)] | None = None


class SyncMessages(Strict):
    conversationId: Id
    afterSeq: Seq | None = None
    since: str | None = Field(default=None, max_length=64)  # ISO 8601, when the client has no seq
    # with afterSeq: also what changed (edits, reactions, deletes) at or before afterSeq after this instant
    changedSince: str | None = Field(default=None, max_length=64)
    limit: int = Field(default=200, ge=1, le=500)
