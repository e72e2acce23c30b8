"""The deployment descriptions describe the system this checkout builds: every service, valid files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / f"relay_{p.name}" / "__main__.py").exists())


def test_every_service_has_an_entry_point() -> None:
    assert SERVICES == ["gateway", "message", "order", "presence"]
    for name in SERVICES:
        assert importlib.util.find_spec(f"relay_{name}.__main__") is not None


def test_compose_runs_every_service_against_real_images() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    images = {name: spec.get("image", "") for name, spec in services.items()}
    assert images["rabbitmq"].startswith("rabbitmq:") and images["redis"].startswith("redis:")
    assert images["mongo"].startswith("mongo:")
    commands = [" ".join(spec.get("command", [])) for spec in services.values()]
    for name in ("message", "presence", "order"):
        assert f"python -m relay_{name}" in commands
    gateways = [n for n in services if n.startswith("gateway")]
    assert len(gateways) >= 2  # several replicas behind nginx
    assert set(gateways) <= set(services["nginx"]["depends_on"])
    for name, spec in services.items():
        env = spec.get("environment", {})
        assert "MONGO_URL" not in env or "secantus" not in str(env["MONGO_URL"]), name


def test_kubernetes_has_a_deployment_per_service_with_probes() -> None:
    docs = [d for f in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {f"relay-{s}" for s in SERVICES}
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", name


def test_only_the_dev_launcher_knows_the_embedded_database() -> None:
    """SecantusDB (GPL-2.0) is a dev/test extra: no service or shared library may import it."""
    offenders = [
        str(path.relative_to(ROOT))
        for base in ("services", "libs")
        for path in (ROOT / base).rglob("*.py")
        if "relay_devstack" not in path.parts and "secantus" in path.read_text().lower()
    ]
    assert offenders == []
