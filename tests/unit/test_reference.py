"""docs/reference.md is generated from the gateway's registrations and must match the code."""

from __future__ import annotations

from pathlib import Path

from relay_gateway.bootstrap import build
from relay_gateway.features import FEATURES
from relay_gateway.reference import render
from relay_gateway.settings import GatewaySettings
from starlette.routing import Route

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference.md"


def test_reference_is_current() -> None:
    assert REFERENCE.read_text() == render(), "docs/reference.md is stale: run `task docs`"


def test_every_event_and_route_is_in_the_reference() -> None:
    text = REFERENCE.read_text()
    app = build(GatewaySettings())
    assert app.router is not None
    for reg in app.router.registry:
        assert f"`{reg.event}` on `{reg.namespace}`" in text
    for feature in FEATURES:
        for route in feature.routes:
            if isinstance(route, Route):
                assert route.path in text


def test_every_event_and_route_is_documented_with_a_sentence() -> None:
    app = build(GatewaySettings())
    assert app.router is not None
    undocumented = [f"{r.namespace} {r.event}" for r in app.router.registry if not r.doc]
    undocumented += [
        r.path for f in FEATURES for r in f.routes if isinstance(r, Route) and not (r.endpoint.__doc__ or "").strip()
    ]
    assert undocumented == []
