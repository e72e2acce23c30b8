"""One async function per order command. No broker, HTTP or socket objects in here."""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from relay_contracts import Envelope, ErrorCode, RelayError, utcnow_iso
from relay_contracts import orders as o
from relay_contracts.claims import Claims, MemoryClaims, Want, needs_claim
from relay_contracts.deadline import CommitDelays, expired_error
from relay_log import get_logger

from relay_order import domain
from relay_order.adapters.repo import DuplicateKeyError, OrderRepo, pending_events, to_order

log = get_logger(__name__)

Publish = Callable[[str, Envelope], Awaitable[None]]

MAX_CAS_RETRIES = 50
WRITE_CONCURRENCY = 8
ORDER_IDS = uuid.UUID("6f1c4c1e-3b0a-4d55-9a7e-2f7f0c1d9b3a")  # namespace of order ids made from command ids


class PublishedMarks:
    """How far this process has published each recent order's outbox, so that its concurrent writers
    do not publish one event twice. (Writers in other processes may; gateways drop repeated ids.)"""

    def __init__(self, size: int = 10_000) -> None:
        self.lock = asyncio.Lock()  # one drain at a time: publishing is quick and order matters
        self._size = size
        self._marks: OrderedDict[str, int] = OrderedDict()

    def get(self, key: str) -> int:
        return self._marks.get(key, 0)

    def set(self, key: str, seq: int) -> None:
        self._marks[key] = max(seq, self._marks.get(key, 0))
        self._marks.move_to_end(key)
        if len(self._marks) > self._size:
            self._marks.popitem(last=False)


@dataclass
class Deps:
    orders: OrderRepo
    publish: Publish  # (routing key, event) on relay.events, confirmed
    marks: PublishedMarks = field(default_factory=PublishedMarks)
    # writes in flight at once: the deadline is checked inside, so it is checked close to the write itself
    # (with many writes queued at the database, a check made before queueing would be stale)
    writes: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(WRITE_CONCURRENCY))
    # who wins when a caller's timer and a write race (relay_contracts.claims); Redis in a deployment
    claims: Claims = field(default_factory=MemoryClaims)
    delays: CommitDelays = field(default_factory=CommitDelays)  # test only (TEST_COMMIT_DELAYS)


async def claim_write(deps: Deps, env: Envelope) -> None:
    """Right before a command's first write: refuse it past its deadline unless a handler claimed it before
    (its redelivery), and claim it `applied` unless its caller's timer claimed it `cancelled` first."""
    start = not env.expired()
    before, after = deps.delays.next() if start else (0.0, 0.0)
    if before:
        await asyncio.sleep(before)  # test only (TEST_COMMIT_DELAYS)
    if not needs_claim(env):
        return
    if not (await deps.claims.claim([Want(env.id, start=start)]))[0]:
        raise expired_error(env)  # its caller has been (or will be) told UNAVAILABLE: nothing may change
    if after:
        await asyncio.sleep(after)  # test only (TEST_COMMIT_DELAYS)


def _actor(env: Envelope) -> tuple[str, tuple[str, ...]]:
    if env.actor is None:
        raise RelayError(ErrorCode.AUTH_REQUIRED, "command has no actor")
    return env.actor.userId, tuple(r.lower() for r in env.actor.roles)


async def _load(deps: Deps, tenant: str, order_id: str) -> dict[str, Any]:
    doc = await deps.orders.get(tenant, order_id)
    if doc is None:
        raise RelayError(ErrorCode.NOT_FOUND, f"order {order_id} not found", field="orderId")
    return doc


async def _drain(deps: Deps, doc: dict[str, Any]) -> None:
    """Publish the outbox entries not yet published, in order; then record how far we got.

    Whoever publishes event n has seen n-1 published (by itself just before, or by whoever advanced
    `publishedSeq`), so the first copy of every event reaches the broker in the order of the changes."""
    key = doc["_id"]
    async with deps.marks.lock:
        pending = [e for e in pending_events(doc) if e["seq"] > deps.marks.get(key)]
        for entry in pending:
            await deps.publish(entry["routingKey"], Envelope.model_validate(entry["envelope"]))
            deps.marks.set(key, entry["seq"])
    if pending:
        await deps.orders.mark_published(doc["tenant"], doc["orderId"], pending[-1]["seq"])


Answer = Callable[[domain.Order, str | None], dict[str, Any]]
Apply = Callable[[domain.Order], tuple[domain.Change, str | None]]


async def _mutate(
    deps: Deps, env: Envelope, order_id: str, request_id: str | None, op: str, apply: Apply, answer: Answer
) -> dict[str, Any]:
    """Read, apply the rule, compare-and-set; on a lost race read again. A request id already
    applied to this order answers the current state and applies nothing (one effect, one event). Without a
    request id the command's own id stands for it, so its redelivery has no second effect either."""
    request_id = request_id or f"cmd-{env.id}"
    claimed = False
    for _ in range(MAX_CAS_RETRIES):
        doc = await _load(deps, env.tenant, order_id)
        order = to_order(doc)
        prior = next((r for r in doc.get("requests", []) if request_id and r["id"] == request_id), None)
        if prior is not None:
            if prior["op"] != op:
                raise RelayError(ErrorCode.CONFLICT, "this request id was already used for a different change")
            log.info("order.retry_answered", order_id=order_id, request_id=request_id)
            await _drain(deps, doc)  # in case the first attempt died before publishing
            return answer(order, prior.get("ref"))
        try:
            change, ref = apply(order)
        except RelayError:
            await _drain(deps, doc)  # a refusal still repairs what an earlier writer left unpublished
            raise
        seq = int(doc.get("eventSeq", 0))
        events = []
        for event_type, data in change.events:
            seq += 1
            envelope = env.caused(event_type, data, id=f"ord-{order_id}-{seq}")
            key = o.event_routing_key(env.tenant, event_type)
            events.append({"routingKey": key, "envelope": envelope.model_dump(mode="json")})
        request = {"id": request_id, "op": op, "ref": ref}
        async with deps.writes:
            if not claimed:  # its caller may have been told UNAVAILABLE: then nothing may change
                await claim_write(deps, env)
                claimed = True
            written = await deps.orders.save(doc, change.order, events, request)
        if written is not None:
            log.info("order.changed", order_id=order_id, op=op, status=change.order.status, events=len(events))
            await _drain(deps, written)
            return answer(change.order, ref)
        log.debug("order.cas_retry", order_id=order_id)
    raise RelayError(ErrorCode.UNAVAILABLE, "order too busy, retry")


async def create_order(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = o.CreateOrder.model_validate(env.data)
    user, roles = _actor(env)
    domain.require(roles, domain.CREATE)
    # idempotent by the unique create-request index: insert, and on its duplicate answer the stored order;
    # without a request id by the order id, derived from the command id (its redelivery inserts nothing new)
    order_id = str(uuid.uuid5(ORDER_IDS, f"{env.tenant}/{env.id}"))
    order = domain.new_order(order_id, env.tenant, cmd.tableSessionId, user, utcnow_iso())
    try:
        async with deps.writes:
            await claim_write(deps, env)
            await deps.orders.insert(order, request_id=cmd.requestId)
    except DuplicateKeyError:
        if cmd.requestId is not None:
            existing = await deps.orders.find_created_by_request(env.tenant, cmd.requestId)
        else:
            existing = await deps.orders.get(env.tenant, order_id)
        if existing is None:
            raise
        return domain.public_order(to_order(existing))
    log.info("order.created", order_id=order.orderId)
    return domain.public_order(order)


async def add_item(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = o.AddItem.model_validate(env.data)
    _, roles = _actor(env)
    domain.require(roles, domain.ADD_ITEM)

    def apply(order: domain.Order) -> tuple[domain.Change, str | None]:
        now = utcnow_iso()
        item = domain.Item(str(uuid.uuid4()), cmd.name, cmd.qty, cmd.unitPrice, domain.PENDING, cmd.notes, now, now)
        return domain.add_item(order, item), item.id

    def answer(order: domain.Order, item_id: str | None) -> dict[str, Any]:
        return domain.item_payload(order, order.item(item_id or ""))

    op = f"add_item:{cmd.name}:{cmd.qty}:{cmd.unitPrice}"
    return await _mutate(deps, env, cmd.orderId, cmd.requestId, op, apply, answer)


async def confirm_order(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = o.ConfirmOrder.model_validate(env.data)
    return await _order_change(env, deps, cmd.orderId, cmd.requestId, domain.CONFIRM, "confirm", domain.confirm)


async def cancel_order(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = o.CancelOrder.model_validate(env.data)
    return await _order_change(env, deps, cmd.orderId, cmd.requestId, domain.CANCEL, "cancel", domain.cancel)


async def set_item_status(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = o.SetItemStatus.model_validate(env.data)

    def rule(order: domain.Order, now: str) -> domain.Change:
        return domain.set_item_status(order, cmd.itemId, cmd.status, now)

    op = f"item:{cmd.itemId}:{cmd.status}"
    return await _order_change(env, deps, cmd.orderId, cmd.requestId, domain.MOVE_ITEM, op, rule)


async def _order_change(
    env: Envelope,
    deps: Deps,
    order_id: str,
    request_id: str | None,
    action: str,
    op: str,
    rule: Callable[[domain.Order, str], domain.Change],
) -> dict[str, Any]:
    """A change answered with the whole order, so the caller sees the status it led to."""
    _, roles = _actor(env)
    domain.require(roles, action)
    return await _mutate(
        deps,
        env,
        order_id,
        request_id,
        op,
        lambda order: (rule(order, utcnow_iso()), None),
        lambda order, _: domain.public_order(order),
    )


async def get_order(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = o.GetOrder.model_validate(env.data)
    _, roles = _actor(env)
    domain.require(roles, domain.READ)
    return domain.public_order(to_order(await _load(deps, env.tenant, cmd.orderId)))


async def list_orders(env: Envelope, deps: Deps) -> list[dict[str, Any]]:
    cmd = o.ListOrders.model_validate(env.data)
    _, roles = _actor(env)
    domain.require(roles, domain.READ)
    docs = await deps.orders.list(env.tenant, cmd.statuses, cmd.limit)
    return [domain.public_order(to_order(d)) for d in docs]


class Handler(Protocol):
    """A command handler: bootstrap binds `deps` by name (functools.partial)."""

    def __call__(self, env: Envelope, deps: Deps) -> Awaitable[Any]: ...


HANDLERS: dict[str, Handler] = {
    o.CREATE_ORDER: create_order,
    o.ADD_ITEM: add_item,
    o.CONFIRM_ORDER: confirm_order,
    o.CANCEL_ORDER: cancel_order,
    o.SET_ITEM_STATUS: set_item_status,
    o.GET_ORDER: get_order,
    o.LIST_ORDERS: list_orders,
}
