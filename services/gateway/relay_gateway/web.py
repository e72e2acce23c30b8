"""The web surface: chat client, kitchen board and ops dashboard pages, their static files, the
vendored socket.io-client build (installed from npm by `task install:web`), `GET /app/session`
and the admin-only `GET /ops/stats`.
"""

from __future__ import annotations

from pathlib import Path

from relay_contracts import ErrorCode, RelayError
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from relay_gateway.feature import Feature
from relay_gateway.ops_stats import ReplicaStats, ops_stats
from relay_gateway.rest.edge import caller, error_response, gateway
from relay_gateway.sockets.router import SocketRouter

STATIC_DIR = Path(__file__).parent / "static"
# services/gateway/relay_gateway/web.py -> the checkout's web/ folder (npm ci puts node_modules there)
DEFAULT_VENDOR_DIR = Path(__file__).resolve().parents[3] / "web" / "node_modules" / "socket.io-client" / "dist"

# pages only load what the gateway serves; nothing inline, nothing from elsewhere
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
PAGES = {"chat": "chat.html", "kitchen": "kitchen.html", "ops": "ops.html"}


def _page(name: str) -> Response:
    return FileResponse(STATIC_DIR / PAGES[name], media_type="text/html", headers=PAGE_HEADERS)


async def chat_page(_: Request) -> Response:
    """The web chat (seed-001 UX) for visitors and agents."""
    return _page("chat")


async def kitchen_page(_: Request) -> Response:
    """The kitchen board: the signed-in restaurant's orders by status, live."""
    return _page("kitchen")


async def ops_page(_: Request) -> Response:
    """The ops dashboard (admins): replicas, connections, rooms, rates, latency, presence by role."""
    return _page("ops")


async def root(_: Request) -> Response:
    """Redirects to the web chat at `/app/`."""
    return RedirectResponse("/app/", status_code=302)


async def socketio_client(request: Request) -> Response:
    """The socket.io-client browser build installed from npm (`task install:web`); 503 when missing."""
    configured = gateway(request).settings.web_vendor_dir
    path = (Path(configured) if configured else DEFAULT_VENDOR_DIR) / "socket.io.min.js"
    if not path.is_file():
        return error_response(
            RelayError(ErrorCode.UNAVAILABLE, "socket.io-client is not installed: run `task install:web`")
        )
    return FileResponse(
        path,
        media_type="text/javascript",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=3600"},
    )


async def session(request: Request) -> JSONResponse:
    """Who the browser is signed in as (session cookie or Bearer); 401 AUTH_REQUIRED otherwise."""
    principal = await caller(request)
    return JSONResponse({"user": principal.public(), "isAgent": principal.is_agent, "isAdmin": principal.is_admin})


ROUTES: list[BaseRoute] = [
    Route("/", root, methods=["GET"]),
    Route("/app/", chat_page, methods=["GET"]),
    Route("/app/kitchen", kitchen_page, methods=["GET"]),
    Route("/app/ops", ops_page, methods=["GET"]),
    Route("/app/session", session, methods=["GET"]),
    Route("/app/vendor/socket.io.min.js", socketio_client, methods=["GET"]),
    Mount("/app/static", app=StaticFiles(directory=STATIC_DIR), name="web-static"),
    Route("/ops/stats", ops_stats, methods=["GET"]),
]


def register(router: SocketRouter) -> None:
    stats = ReplicaStats(router.gw)
    router.gw.on_start.append(stats.run)


FEATURE = Feature("web", routes=ROUTES, register=register)
