"""Read receipts (SPEC §3, seed-003 `marcar_leido`): one message, or all of a conversation."""

from __future__ import annotations

from relay_contracts.messages import Id, Seq, Strict

MARK_READ = "message.mark_read"
MESSAGE_READ = "message.read"


class MarkRead(Strict):
    conversationId: Id
    messageId: Id | None = None  # None: every message of the conversation


class MessageRead(Strict):
    """`message.read` event data: who read which messages, and when."""

    conversationId: str
    readerId: str
    messageIds: tuple[str, ...]
    all: bool
    readAt: str
    lastSeq: Seq = 0
