"""Every feature the gateway serves. Add a line here to add a dialect or surface."""

from __future__ import annotations

from relay_gateway.dialects import channels as channels_dialect
from relay_gateway.dialects import orders as orders_dialect
from relay_gateway.dialects import presence as presence_dialect
from relay_gateway.dialects import support as support_dialect
from relay_gateway.feature import Feature
from relay_gateway.rest import auth as auth_rest
from relay_gateway.rest import channels as channels_rest
from relay_gateway.rest import files as files_rest
from relay_gateway.rest import orders as orders_rest
from relay_gateway.rest import support as support_rest
from relay_gateway.rest import users as users_rest
from relay_gateway.sockets import channels as channels_sockets
from relay_gateway.sockets import expiry as expiry_sockets
from relay_gateway.sockets import orders as orders_sockets
from relay_gateway.sockets import support as support_sockets
from relay_gateway.sockets import users as users_sockets

FEATURES: list[Feature] = [
    Feature("auth", routes=auth_rest.ROUTES),
    Feature("support", table=support_dialect.TABLE, routes=support_rest.ROUTES, register=support_sockets.register),
    Feature("orders", table=orders_dialect.TABLE, routes=orders_rest.ROUTES, register=orders_sockets.register),
    Feature("files", routes=files_rest.ROUTES),
    Feature("token-expiry", register=expiry_sockets.register),
    Feature(
        "channels",
        table=channels_dialect.TABLE,
        routes=channels_rest.ROUTES,
        register=channels_sockets.register,
        namespaces=("/chat",),
    ),
    Feature("users", table=presence_dialect.TABLE, routes=users_rest.ROUTES, register=users_sockets.register),
]
