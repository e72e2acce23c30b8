"""Group commit of sends (ARCHITECTURE.md, "Ingest").

The sends that wait together, across all conversations, are committed together: one read of their
conversations, one `insert_many` with each conversation's next seq range, one bulk update of their
stats, and their events published in seq order with the confirms awaited together; then each caller
gets its own answer. One drainer task per instance writes these rounds one after the other, so nothing
is held under a lock, a conversation's writes never race each other inside an instance, and the
cost of a round is a handful of database round trips whether it carries one send or hundreds. A
round's announce (events, answers) runs in the background while the next round reads and
writes, after the previous round's announce, so events still leave in seq order.
Across instances the unique `(conversation, seq)` index settles it: a seq another instance took
first fails the insert at that point, that conversation's tail is read again and the rest is
renumbered, so seq stays gap-free (a seq exists only once its message is stored). Idempotency is
the unique `(conversation, sender, clientMessageId)` index: insert, and on that duplicate answer
(and re-announce) the stored original, with no read first.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import Histogram
from relay_contracts import Envelope, ErrorCode, RelayError, new_id
from relay_contracts import messages as m
from relay_contracts.claims import Want, needs_claim
from relay_contracts.deadline import expired_error
from relay_contracts.routing import event_key
from relay_log import get_logger
from relay_ops.rounds import Drainer

from relay_message import domain
from relay_message.adapters.repo import CLIENT_CONFLICT, MessageStats

if TYPE_CHECKING:
    from relay_message.handlers import Deps

log = get_logger(__name__)

MAX_BATCH = 500  # sends committed in one round; more wait for the next
MAX_SEQ_RETRIES = 20
KNOWN_TAILS = 10_000  # conversations whose last seq this instance remembers
PACE_ROUNDS = 16
COLD_START_SECONDS = 0.5

Key = tuple[str, str]  # (tenant, conversation id)

BATCH_SIZE = Histogram(
    "relay_ingest_batch_size", "Sends committed together", buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500)
)
PHASE_SECONDS = Histogram(
    "relay_ingest_phase_seconds",
    "Time of one group commit's phases: read the conversations, write, record stats and publish events",
    ["phase"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


@dataclass
class PendingSend:
    env: Envelope
    cmd: m.SendMessage
    user: str
    roles: tuple[str, ...]
    attachment: dict[str, Any] | None
    future: asyncio.Future[dict[str, Any]]
    first: bool = False
    doc: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.env.tenant, self.cmd.conversationId)


class EarlierAnnounceFailed(RuntimeError):
    """A round's events were held back because an earlier round's did not go out (not a RelayError: the
    command is requeued, and its retry re-announces the stored message after the earlier ones)."""


@dataclass
class Announce:
    """What a written round still has to do: its events, its answers."""

    answers: list[tuple[PendingSend, dict[str, Any], bool]]
    events: list[tuple[str, Envelope]]
    began_writing: float
    written: float


class SendPipeline:
    """This instance's sends waiting to be committed, and the rounds that commit them."""

    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self._drainer: Drainer[PendingSend] = Drainer(max_batch)
        self._tails: OrderedDict[Key, int] = OrderedDict()
        # from the write to the answers, the recent rounds (a fresh instance assumes a slow start)
        self._rounds: deque[float] = deque([COLD_START_SECONDS], maxlen=PACE_ROUNDS)
        self._announcing: asyncio.Task[bool] | None = None  # the latest round's announce

    async def submit(
        self,
        deps: Deps,
        env: Envelope,
        cmd: m.SendMessage,
        user: str,
        roles: tuple[str, ...],
        attachment: dict[str, Any] | None,
    ) -> dict[str, Any]:
        pending = PendingSend(env, cmd, user, roles, attachment, asyncio.get_running_loop().create_future())
        answer: dict[str, Any] = await self._drainer.submit(pending, functools.partial(self._round, deps))
        return answer

    @property
    def pace(self) -> float:
        """How long a round takes from its write to its answers: the slowest of the recent ones."""
        return max(self._rounds)

    def _remember_tail(self, key: Key, seq: int) -> None:
        self._tails[key] = seq
        self._tails.move_to_end(key)
        if len(self._tails) > KNOWN_TAILS:
            self._tails.popitem(last=False)

    async def _round(self, deps: Deps, batch: list[PendingSend]) -> None:
        started = time.perf_counter()
        keys = list(dict.fromkeys(p.key for p in batch))
        conversations = await deps.conversations.get_many(keys)
        started = _phase("read", started)
        allowed: list[PendingSend] = []
        for p in batch:
            conversation = conversations.get(p.key)
            if p.future.done():
                continue
            if conversation is None:
                error = RelayError(
                    ErrorCode.NOT_FOUND, f"conversation {p.cmd.conversationId} not found", field="chatId"
                )
                p.future.set_exception(error)
            elif not domain.can_read(conversation, p.user, p.roles):
                p.future.set_exception(RelayError(ErrorCode.PERMISSION_DENIED, "not a member of this conversation"))
            elif not domain.can_send(conversation, p.user, p.roles):
                await self._refuse(deps, p)
            else:
                allowed.append(p)
        began_writing = time.perf_counter()
        stored, retried = await self._write(deps, conversations, allowed)
        if not stored and not retried:
            _phase("write", started)
            return
        # the stats here, not beside the events: the embedded database serves one request at a time, so a
        # stats update overlapping the next round's insert only made both slower (write conflicts, retries)
        await self._record_safely(deps, conversations, stored)
        started = _phase("write", started)
        BATCH_SIZE.observe(len(stored) + len(retried))
        # a retry is answered with the original, re-announced in case its first attempt died before
        # publishing (same event id, so gateways drop the copy they already delivered)
        answers = [(p, domain.public_message(original), False) for p, original in retried]
        answers += [(p, domain.public_message(p.doc), p.first) for p in stored]
        events: list[tuple[str, Envelope]] = []
        for p, public, first in answers:
            events += _announcements(p.env, public, conversations[p.key], first=first)
        # announced in the background while the next round reads and writes; after the previous round's
        # announce, so events leave in seq order. A round written while that one was still going shares
        # its fate: if it fails, this round's events must not overtake its (re-announced) ones.
        previous = self._announcing
        behind = previous if previous is not None and not previous.done() else None
        round_ = Announce(answers, events, began_writing, started)
        self._announcing = asyncio.create_task(self._announce(deps, behind, round_))

    async def _announce(self, deps: Deps, behind: asyncio.Task[bool] | None, round_: Announce) -> bool:
        """Publish the round's events (confirms awaited together), then answer its callers. False when its
        events did not all go out: its callers hear an error that makes their commands come back
        (serve_commands requeues them), and their retry re-announces the stored messages."""
        try:
            if behind is not None and not await behind:
                raise EarlierAnnounceFailed("an earlier round's events did not go out")
            await deps.publish_many(round_.events)
        except BaseException as exc:
            log.warning("message.announce_failed", messages=len(round_.answers), error=type(exc).__name__)
            _fail([p for p, _, _ in round_.answers], exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return False
        _phase("announce", round_.written)
        for p, public, _ in round_.answers:
            _answer(p, public)
        self._rounds.append(time.perf_counter() - round_.began_writing)
        return True

    async def _write(
        self, deps: Deps, conversations: dict[Key, dict[str, Any]], allowed: list[PendingSend]
    ) -> tuple[list[PendingSend], list[tuple[PendingSend, dict[str, Any]]]]:
        # the deadline, checked right before the first write: a send is begun only if it can be answered before
        # its deadline at the pace of the recent rounds (twice the slowest, at most half the command's lifetime so
        # short timeouts still work), so an overloaded service refuses late sends instead of answering them after
        # their callers gave up. Then the claims (relay_contracts.claims), the whole round in one round trip: a
        # send whose caller's timer won is not written; a late one goes only if it was claimed before (its
        # redelivery).
        now = datetime.now(UTC)
        wants = [
            Want(p.env.id, start=not p.env.expired(now + timedelta(seconds=min(2 * self.pace, _lifetime(p.env) / 2))))
            for p in allowed
        ]
        before, after = deps.delays.next() if any(w.start for w in wants) else (0.0, 0.0)
        if before:
            await asyncio.sleep(before)  # test only (TEST_COMMIT_DELAYS)
        claiming = [(p, w) for p, w in zip(allowed, wants, strict=True) if needs_claim(p.env)]
        go = dict(zip((p.env.id for p, _ in claiming), await deps.claims.claim([w for _, w in claiming]), strict=True))
        live = []
        for p, want in zip(allowed, wants, strict=True):
            if go.get(p.env.id, want.start):
                live.append(p)
            else:
                p.future.set_exception(expired_error(p.env))
        if len(live) < len(allowed):
            log.warning("message.sends_expired", count=len(allowed) - len(live))
        if not live:
            self._rounds.append(self.pace / 2)  # nothing written, nothing measured: let the estimate recover
            return [], []
        if after:
            await asyncio.sleep(after)  # test only (TEST_COMMIT_DELAYS)
        claimed: set[Key] = set()
        for p in live:
            conversation = conversations[p.key]
            if p.key not in claimed and domain.claims_first_response(conversation, p.roles, p.cmd.isInternal):
                claimed.add(p.key)
                tenant, cid = p.key
                p.first = await deps.conversations.claim_status(tenant, cid, domain.PENDING, domain.IN_PROGRESS)
        for p in live:
            p.doc = _new_doc(p)
        return await self._insert(deps, conversations, live)

    async def _refuse(self, deps: Deps, p: PendingSend) -> None:
        """May not send (any more): a retry of a send stored before still gets its original."""
        tenant, cid = p.key
        original = await deps.messages.find_by_client_id(tenant, cid, p.user, p.cmd.clientMessageId)
        if original is not None:
            p.future.set_result(domain.public_message(original))
        else:
            p.future.set_exception(RelayError(ErrorCode.PERMISSION_DENIED, "you may not send to this conversation"))

    async def _insert(
        self, deps: Deps, conversations: dict[Key, dict[str, Any]], live: list[PendingSend]
    ) -> tuple[list[PendingSend], list[tuple[PendingSend, dict[str, Any]]]]:
        """Store `live` with each conversation's next seqs, in order; returns (stored, retries answered by
        their original). A conversation's tail not remembered is taken from its `lastSeq` (never ahead of the
        stored messages; when behind, the insert says so and the tail is read)."""
        tails = {p.key: self._tails.get(p.key, int(conversations[p.key].get("lastSeq", 0))) for p in live}
        stored: list[PendingSend] = []
        retried: list[tuple[PendingSend, dict[str, Any]]] = []
        remaining = sorted(live, key=lambda p: p.key)  # stable: each conversation's sends keep their order
        for _ in range(MAX_SEQ_RETRIES):
            next_seq = dict(tails)
            for p in remaining:
                next_seq[p.key] += 1
                p.doc["seq"] = next_seq[p.key]
            inserted, conflict = await deps.messages.insert_batch([p.doc for p in remaining])
            for p in remaining[:inserted]:
                tails[p.key] = p.doc["seq"]
            stored += remaining[:inserted]
            remaining = remaining[inserted:]
            if conflict is None:
                break
            tenant, cid = remaining[0].key
            if conflict == CLIENT_CONFLICT:
                p = remaining.pop(0)
                original = await deps.messages.find_by_client_id(tenant, cid, p.user, p.cmd.clientMessageId)
                if original is not None:
                    retried.append((p, original))
                else:
                    remaining.insert(0, p)  # the original vanished meanwhile: store this one after all
            else:
                tails[(tenant, cid)] = await deps.messages.last_seq(tenant, cid)  # another writer took these seqs
            if not remaining:
                break
        for key, seq in tails.items():
            self._remember_tail(key, seq)
        if remaining:
            for p in remaining:
                self._tails.pop(p.key, None)
            _fail(remaining, RelayError(ErrorCode.UNAVAILABLE, "conversation too busy, retry"))
        return stored, retried

    async def _record_safely(
        self, deps: Deps, conversations: dict[Key, dict[str, Any]], stored: list[PendingSend]
    ) -> None:
        try:
            await self._record(deps, conversations, stored)
        except Exception:
            # the messages are stored: their callers must hear so; the stats catch up with the next round
            log.exception("message.stats_failed", messages=len(stored))

    async def _record(self, deps: Deps, conversations: dict[Key, dict[str, Any]], stored: list[PendingSend]) -> None:
        """Each conversation's stats for the whole round, in one bulk update; new agent senders become members."""
        by_key: dict[Key, list[PendingSend]] = {}
        for p in stored:
            by_key.setdefault(p.key, []).append(p)
        stats = []
        for (tenant, cid), sends in by_key.items():
            conversation = conversations[(tenant, cid)]
            joined: set[str] = set()
            for p in sends:
                if (
                    p.user not in joined
                    and domain.participant(conversation, p.user) is None
                    and domain.is_agent(p.roles)
                ):
                    # an agent who answers becomes a member: their own unread counts and chat list follow
                    joined.add(p.user)
                    member = domain.member(p.user, domain.creator_role(p.roles), p.doc["createdAt"])
                    await deps.conversations.add_participant(tenant, cid, member)
            unread: dict[str, int] = {}
            for p in sends:
                for user in domain.unread_audience(conversation, p.user, p.cmd.isInternal):
                    unread[user] = unread.get(user, 0) + 1
            last = sends[-1].doc
            last_public = next((p.doc for p in reversed(sends) if not p.cmd.isInternal), None)
            stats.append(
                MessageStats(
                    tenant,
                    cid,
                    count=len(sends),
                    last_seq=last["seq"],
                    at=last["createdAt"],
                    unread=unread,
                    agents_preview=domain.preview(domain.public_message(last)),
                    public_preview=domain.preview(domain.public_message(last_public)) if last_public else None,
                )
            )
        await deps.conversations.record_many(stats)


def _lifetime(env: Envelope) -> float:
    """Seconds from the command's creation to its deadline (0 when it has none)."""
    if env.expiresAt is None:
        return 0.0
    created = datetime.fromisoformat(env.occurredAt.replace("Z", "+00:00"))
    return max(0.0, (datetime.fromisoformat(env.expiresAt.replace("Z", "+00:00")) - created).total_seconds())


def _phase(name: str, started: float) -> float:
    now = time.perf_counter()
    PHASE_SECONDS.labels(name).observe(now - started)
    return now


def _fail(batch: list[PendingSend], error: BaseException) -> None:
    for p in batch:
        if not p.future.done():
            p.future.set_exception(error)


def _answer(p: PendingSend, public: dict[str, Any]) -> None:
    if not p.future.done():
        p.future.set_result(public)


def _new_doc(p: PendingSend) -> dict[str, Any]:
    cmd, env = p.cmd, p.env
    return {
        "_id": new_id(),
        "tenant": env.tenant,
        "conversationId": cmd.conversationId,
        "seq": 0,  # numbered when stored
        "senderId": p.user,
        "senderRoles": list(p.roles),
        "type": cmd.type,
        "content": cmd.content,
        "attachment": p.attachment,
        "isInternal": cmd.isInternal,
        "isFirstResponse": p.first,
        "replyTo": cmd.replyTo,
        "senderName": env.actor.username if env.actor else None,
        "threadId": cmd.threadId,
        "parentMessageId": cmd.parentMessageId,
        "attachments": list(cmd.attachments),
        "mentions": list(dict.fromkeys(cmd.mentions)),
        "links": list(cmd.links),
        "thread": None,
        "priority": cmd.priority,
        "metadata": cmd.metadata,
        "clientMessageId": cmd.clientMessageId,
        "deliveryState": "sent",
        "reads": [],
        "reactions": [],
        "edits": [],
        "deleted": False,
        "createdAt": datetime.now(UTC),
        "correlationId": env.correlationId,
    }


def _announcements(
    env: Envelope, public: dict[str, Any], conversation: dict[str, Any], *, first: bool
) -> list[tuple[str, Envelope]]:
    """The events one stored message causes, in order: created, its mentions, the first-response status."""
    cid = public["conversationId"]
    events = [
        (
            event_key(env.tenant, "conv", cid, m.MESSAGE_CREATED),
            env.caused(m.MESSAGE_CREATED, public, id=f"msg-{public['messageId']}"),
        )
    ]
    if not public.get("isInternal"):  # a note's mentions would reach readers who may not see notes
        for user in public.get("mentions", []):
            if user == public["senderId"] or not domain.can_read(conversation, user, ()):
                continue
            mention = env.caused(
                m.MESSAGE_MENTIONED, {**public, "mentionedUserId": user}, id=f"mention-{public['messageId']}-{user}"
            )
            events.append((event_key(env.tenant, "user", user, m.MESSAGE_MENTIONED), mention))
    if first:
        status = {"conversationId": cid, "status": domain.IN_PROGRESS, "changedAt": public["createdAt"]}
        events.append(
            (
                event_key(env.tenant, "conv", cid, m.CONVERSATION_STATUS_CHANGED),
                env.caused(m.CONVERSATION_STATUS_CHANGED, status),
            )
        )
    return events
