"""The web feature's routes: pages with a strict CSP, static files, the npm socket.io-client build."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from relay_gateway.bootstrap import build
from relay_gateway.settings import GatewaySettings
from relay_gateway.web import DEFAULT_VENDOR_DIR, STATIC_DIR


def client(**settings: str) -> httpx.AsyncClient:
    app = build(GatewaySettings(**settings)).asgi
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test")  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["/app/", "/app/kitchen", "/app/ops"])
async def test_pages_load_only_their_own_scripts(path: str) -> None:
    async with client() as c:
        answer = await c.get(path)
        for src in re.findall(r'<script src="([^"]+)"', answer.text):
            assert (await c.get(src)).status_code == 200, src
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "object-src 'none'" in csp and "unsafe-inline" not in csp
    assert answer.headers["x-content-type-options"] == "nosniff"
    scripts = re.findall(r'<script src="([^"]+)"', answer.text)
    assert scripts and all(s.startswith("/app/") for s in scripts), scripts
    assert "<script>" not in answer.text and not re.search(r"\son[a-z]+=", answer.text)  # nothing inline


async def test_root_redirects_to_the_chat() -> None:
    async with client() as c:
        answer = await c.get("/", follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"] == "/app/"


async def test_socketio_client_comes_from_the_npm_install() -> None:
    if not (DEFAULT_VENDOR_DIR / "socket.io.min.js").exists():
        pytest.skip("web/node_modules missing: run `task install:web`")
    async with client() as c:
        answer = await c.get("/app/vendor/socket.io.min.js")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/javascript")
    assert answer.content == (DEFAULT_VENDOR_DIR / "socket.io.min.js").read_bytes()


async def test_missing_socketio_client_is_a_clear_503(tmp_path: Path) -> None:
    async with client(web_vendor_dir=str(tmp_path)) as c:
        answer = await c.get("/app/vendor/socket.io.min.js")
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "UNAVAILABLE"
    assert "task install:web" in answer.json()["error"]["message"]


async def test_session_and_ops_stats_need_a_caller() -> None:
    async with client() as c:
        assert (await c.get("/app/session")).status_code == 401
        assert (await c.get("/ops/stats")).json()["error"]["code"] == "AUTH_REQUIRED"


def test_page_scripts_never_parse_strings_as_html() -> None:
    """Content is inserted as text; none of the HTML-parsing sinks appear in the pages' code."""
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function")
    for script in STATIC_DIR.glob("*.js"):
        assert not sinks.search(script.read_text()), f"{script.name} uses an HTML sink"
