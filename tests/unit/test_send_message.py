"""The message service's send path with in-memory repos: seq allocation, idempotency, rules."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from relay_contracts import Envelope, RelayError
from relay_contracts.envelope import Actor, iso
from relay_message import handlers
from relay_message.handlers import Deps

from tests.unit.fakes import FakeConversations, FakeMessages, Published


@pytest.fixture
def deps() -> Deps:
    return Deps(FakeConversations(), FakeMessages(), Published(), max_text_length=50)  # type: ignore[arg-type]


def cmd(type_: str, user: str, roles: tuple[str, ...], tenant: str = "acme", **data) -> Envelope:
    return Envelope(type=type_, tenant=tenant, correlationId="corr-1", actor=Actor(userId=user, roles=roles), data=data)


async def open_chat(deps: Deps, cid: str = "c1", tenant: str = "acme") -> None:
    await handlers.create_conversation(cmd("conversation.create", "v1", ("visitor",), tenant, conversationId=cid), deps)


async def send(deps: Deps, user="v1", roles=("visitor",), content="hi", client_id=None, **extra):
    import uuid

    data = {"conversationId": "c1", "content": content, "clientMessageId": client_id or uuid.uuid4().hex, **extra}
    return await handlers.send_message(cmd("message.send", user, roles, **data), deps)


async def test_seq_is_gap_free_and_increasing_even_when_sends_race(deps):
    await open_chat(deps)
    results = await asyncio.gather(*(send(deps, content=f"m{i}") for i in range(25)))
    assert sorted(r["seq"] for r in results) == list(range(1, 26))


async def test_a_seq_taken_by_another_instance_is_retried_not_skipped(deps):
    await open_chat(deps)
    await send(deps)
    deps.messages.steal_next_seq = 2  # type: ignore[attr-defined]
    result = await send(deps)
    assert result["seq"] == 4  # 2 and 3 went to the other writer; ours is the next free one
    assert sorted(d["seq"] for d in deps.messages.docs) == [1, 2, 3, 4]  # type: ignore[attr-defined]


async def test_retry_with_same_client_message_id_returns_original_and_reannounces_same_event(deps):
    await open_chat(deps)
    first = await send(deps, client_id="same")
    again = await send(deps, client_id="same", content="different text")
    assert again == first
    created = deps.publish.of_type("message.created")  # type: ignore[attr-defined]
    assert len(created) == 2 and created[0].id == created[1].id  # gateways drop the copy by id
    assert len(deps.messages.docs) == 1  # type: ignore[attr-defined]


async def test_first_agent_answer_moves_pending_chat_in_progress_once(deps):
    await open_chat(deps)
    await send(deps, content="hello")
    note = await send(deps, user="a1", roles=("commercial",), content="vip", isInternal=True)
    answer = await send(deps, user="a1", roles=("commercial",), content="on it")
    later = await send(deps, user="a2", roles=("agent",), content="me too")
    assert (note["isFirstResponse"], answer["isFirstResponse"], later["isFirstResponse"]) == (False, True, False)
    statuses = deps.publish.of_type("conversation.status_changed")  # type: ignore[attr-defined]
    assert [s.data["status"] for s in statuses] == ["IN_PROGRESS"]


@pytest.mark.parametrize(
    ("user", "roles", "extra", "code"),
    [
        ("v1", ("visitor",), {"content": "x" * 51}, "VALIDATION_ERROR"),
        ("v1", ("visitor",), {"content": "  "}, "VALIDATION_ERROR"),
        ("v1", ("visitor",), {"isInternal": True}, "PERMISSION_DENIED"),
        ("v2", ("visitor",), {}, "PERMISSION_DENIED"),
        ("v1", ("visitor",), {"conversationId": "nope"}, "NOT_FOUND"),
    ],
)
async def test_refusals_store_and_publish_nothing(deps, user, roles, extra, code):
    await open_chat(deps)
    before = list(deps.publish.events)  # type: ignore[attr-defined]
    with pytest.raises(RelayError) as err:
        await send(deps, user=user, roles=roles, **extra)
    assert err.value.code == code
    assert deps.messages.docs == [] and deps.publish.events == before  # type: ignore[attr-defined]


async def test_tenants_do_not_share_conversations(deps):
    await open_chat(deps, tenant="acme")
    with pytest.raises(RelayError) as err:
        await handlers.send_message(
            cmd("message.send", "v1", ("visitor",), "globex", conversationId="c1", content="x", clientMessageId="k"),
            deps,
        )
    assert err.value.code == "NOT_FOUND"


async def test_sends_waiting_together_are_committed_together_in_seq_order(deps):
    await open_chat(deps)
    results = await asyncio.gather(*(send(deps, content=f"m{i}") for i in range(40)))
    assert [r["seq"] for r in results] == list(range(1, 41))  # answered in the order they arrived
    inserts = deps.messages.inserts  # type: ignore[attr-defined]
    assert sum(inserts) == 40 and len(inserts) <= 2  # one bulk write per round, not one per send
    assert deps.conversations.stats_updates == len(inserts)  # type: ignore[attr-defined]
    created = deps.publish.of_type("message.created")  # type: ignore[attr-defined]
    assert [e.data["seq"] for e in created] == list(range(1, 41))
    chat = await deps.conversations.get("acme", "c1")
    assert chat["lastSeq"] == 40 and chat["stats"]["totalMessages"] == 40


async def test_a_retry_in_the_same_batch_stores_once_and_both_get_the_original(deps):
    await open_chat(deps)
    one, two, other = await asyncio.gather(
        send(deps, client_id="twice"), send(deps, client_id="twice", content="again"), send(deps, client_id="k")
    )
    assert one == two and one["content"] == "hi"
    assert sorted(d["seq"] for d in deps.messages.docs) == [1, 2] and other["seq"] == 2  # type: ignore[attr-defined]


async def test_a_send_past_its_deadline_is_refused_and_changes_nothing(deps):
    await open_chat(deps)
    before = list(deps.publish.events)  # type: ignore[attr-defined]
    late = cmd("message.send", "v1", ("visitor",), conversationId="c1", content="late", clientMessageId="k")
    with pytest.raises(RelayError) as err:
        await handlers.send_message(late.expiring_in(-1), deps)
    assert err.value.code == "UNAVAILABLE"
    assert deps.messages.docs == [] and deps.publish.events == before  # type: ignore[attr-defined]
    on_time = await handlers.send_message(late.expiring_in(5), deps)  # the caller's retry, same key
    assert on_time["seq"] == 1


async def test_unread_counts_of_a_batch_add_up_per_member(deps):
    await open_chat(deps)
    await send(deps, user="a1", roles=("commercial",), content="hello")  # the agent joins by answering
    await asyncio.gather(
        *(send(deps, content=f"v{i}") for i in range(3)),
        send(deps, user="a1", roles=("commercial",), content="note", isInternal=True),
    )
    chat = await deps.conversations.get("acme", "c1")
    assert chat["stats"]["unread"] == {"v1": 1, "a1": 3}  # the visitor never counts the note
    assert chat["preview"]["all"]["content"] == "v2" and chat["preview"]["agents"]["content"] == "note"


async def test_stored_messages_are_answered_even_if_their_stats_update_fails(deps):
    from pymongo.errors import AutoReconnect

    await open_chat(deps)

    async def stats_down(*_args, **_kwargs) -> None:
        raise AutoReconnect("database went away after the insert")

    deps.conversations.record_many = stats_down  # type: ignore[method-assign]
    stored = await send(deps, content="kept")  # stored, so the caller must not be told UNAVAILABLE
    assert stored["seq"] == 1 and [e.data["seq"] for e in deps.publish.of_type("message.created")] == [1]  # type: ignore[attr-defined]


async def test_a_send_that_could_not_be_answered_before_its_deadline_is_refused_not_written(deps):
    """At the pace of recent rounds (here: slow), a send with less time left than that is refused unwritten."""
    await open_chat(deps)
    deps.sends._rounds.append(2.0)  # type: ignore[attr-defined]  # a recent round took 2 s
    tight = cmd("message.send", "v1", ("visitor",), conversationId="c1", content="x", clientMessageId="k")
    waited = tight.model_copy(update={"occurredAt": iso(datetime.now(UTC) - timedelta(seconds=3))})
    with pytest.raises(RelayError) as err:  # sent 3 s ago, 1 s left: at this pace it could not be answered in time
        await handlers.send_message(waited.expiring_in(1.0), deps)
    assert err.value.code == "UNAVAILABLE" and deps.messages.docs == []  # type: ignore[attr-defined]
    roomy = await handlers.send_message(tight.expiring_in(10.0), deps)  # enough time: written
    assert roomy["seq"] == 1
    short = cmd("message.send", "v1", ("visitor",), conversationId="c1", content="y", clientMessageId="k2")
    quick = await handlers.send_message(short.expiring_in(0.75), deps)  # a short timeout still works, on time
    assert quick["seq"] == 2


async def test_sends_into_many_conversations_share_one_round(deps):
    for i in range(30):
        await open_chat(deps, cid=f"c{i}")
    sends = [
        handlers.send_message(
            cmd(
                "message.send",
                "v1",
                ("visitor",),
                conversationId=f"c{i % 30}",
                content=f"m{i}",
                clientMessageId=f"k{i}",
            ),
            deps,
        )
        for i in range(60)
    ]
    results = await asyncio.gather(*sends)
    by_chat: dict[str, list[int]] = {}
    for r in results:
        by_chat.setdefault(r["conversationId"], []).append(r["seq"])
    assert all(seqs == [1, 2] for seqs in by_chat.values()) and len(by_chat) == 30
    assert len(deps.messages.inserts) <= 2 and deps.conversations.stats_updates <= 2  # type: ignore[attr-defined]
    for i in range(30):
        chat = await deps.conversations.get("acme", f"c{i}")
        assert chat["lastSeq"] == 2 and chat["stats"]["totalMessages"] == 2


async def test_a_send_whose_caller_cancelled_is_not_written_even_in_time(deps):
    await open_chat(deps)
    env = cmd("message.send", "v1", ("visitor",), conversationId="c1", content="x", clientMessageId="k").expiring_in(5)
    await deps.claims.cancel(env.id)  # the gateway's timer fired first
    with pytest.raises(RelayError) as err:
        await handlers.send_message(env, deps)
    assert err.value.code == "UNAVAILABLE" and deps.messages.docs == []  # type: ignore[attr-defined]


async def test_a_claimed_send_redelivered_past_its_deadline_is_answered_once(deps):
    await open_chat(deps)
    env = cmd("message.send", "v1", ("visitor",), conversationId="c1", content="x", clientMessageId="k").expiring_in(5)
    first = await handlers.send_message(env, deps)
    late = env.model_copy(update={"expiresAt": iso(datetime.now(UTC) - timedelta(seconds=1))})
    again = await handlers.send_message(late, deps)  # its handler died after the claim: the redelivery goes
    assert again["messageId"] == first["messageId"] and len(deps.messages.docs) == 1  # type: ignore[attr-defined]
