"""seed-004 sockets: a token carrying `restaurantId` joins `restaurant:{restaurantId}` on connect."""

from __future__ import annotations

from relay_contracts import orders as o
from relay_log import get_logger

from relay_gateway.context import Connection, Gateway
from relay_gateway.dialects.orders import NAMESPACE
from relay_gateway.rooms import scoped
from relay_gateway.sockets.router import SocketRouter

log = get_logger(__name__)

RESTAURANT_CLAIM = "restaurantId"


async def join_restaurant(gw: Gateway, conn: Connection) -> None:
    principal = conn.principal
    if principal is None or principal.tenant_claim != RESTAURANT_CLAIM or conn.namespace != NAMESPACE:
        return
    room = o.restaurant_room(principal.tenant)
    # bind before entering the room, so no event of the restaurant can pass the socket by
    await gw.delivery.interest.add(conn.sid, o.restaurant_interest(principal.tenant))
    await gw.sio.enter_room(conn.sid, scoped(principal.tenant, room), namespace=conn.namespace)
    log.info("orders.joined_restaurant", sid=conn.sid, room=room)


def register(router: SocketRouter) -> None:
    router.gw.on_principal.append(join_restaurant)
