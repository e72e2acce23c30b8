"""deploy/observability/ reads only metrics the code defines, and its alert rules are valid and behave."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from relay_ops import ops_routes
from starlette.applications import Starlette

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy" / "observability"
DEFINITION = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"")
SUFFIXES = {"Counter": ("_total", "_created"), "Gauge": ("",), "Histogram": ("_bucket", "_sum", "_count", "_created")}
SUFFIXES["Summary"] = ("", "_sum", "_count", "_created")
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def exposed_metrics() -> set[str]:
    """Every sample name the code's prometheus_client definitions expose (a Counter "x" exposes x_total)."""
    names: set[str] = set()
    for path in [*(ROOT / "libs").rglob("*.py"), *(ROOT / "services").rglob("*.py")]:
        for kind, name in DEFINITION.findall(path.read_text()):
            base = name.removesuffix("_total") if kind == "Counter" else name
            names.update(base + suffix for suffix in SUFFIXES[kind])
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or label names."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    found = re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr)
    return {name for name in found if name not in PROMQL_WORDS}


def alert_rules() -> list[dict]:
    rules = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_parser_finds_metrics_and_skips_functions_labels_and_keywords() -> None:
    expr = 'histogram_quantile(0.99, sum by (le, type) (rate(relay_x_bucket{code=~"A|B"}[5m]))) > on(job) up'
    assert metric_names(expr) == {"relay_x_bucket", "up"}


def test_every_metric_the_alerts_and_dashboard_read_is_defined_in_the_code() -> None:
    exposed = exposed_metrics()
    assert {"relay_ready", "relay_dead_letter_messages", "relay_gateway_delivery_seconds_bucket"} <= exposed
    exprs = [rule["expr"] for rule in alert_rules()] + dashboard_exprs()
    used = {name for expr in exprs for name in metric_names(expr)}
    assert used and used - exposed == set()


def test_the_alerts_and_dashboard_cover_what_operators_watch() -> None:
    used = {name for expr in [r["expr"] for r in alert_rules()] + dashboard_exprs() for name in metric_names(expr)}
    for metric in (
        "relay_ready",  # readiness
        "relay_gateway_delivery_seconds_bucket",  # delivery latency
        "relay_dead_letter_messages",  # dead letters
        "relay_gateway_adapter_listener_lost_total",  # adapter listener
        "relay_errors_total",  # rate limits (code="RATE_LIMITED")
        "relay_gateway_bindings",  # bindings
    ):
        assert metric in used, metric
    assert all(rule["labels"]["severity"] in {"critical", "warning", "info"} for rule in alert_rules())


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian: prometheus) not installed")
def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        ran = subprocess.run(["promtool", *args], cwd=OBSERVABILITY, capture_output=True, text=True)
        assert ran.returncode == 0, ran.stdout + ran.stderr


async def test_metrics_record_readiness_as_of_the_scrape() -> None:
    state = {"redis": True}

    async def redis() -> bool:
        return state["redis"]

    app = Starlette(routes=ops_routes({"redis": redis}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ops") as client:
        assert 'relay_ready{check="redis"} 1.0' in (await client.get("/metrics")).text
        state["redis"] = False  # no probe in between: the scrape itself finds out
        assert 'relay_ready{check="redis"} 0.0' in (await client.get("/metrics")).text
        assert (await client.get("/readyz")).status_code == 503
