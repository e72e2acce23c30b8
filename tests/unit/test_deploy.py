"""The deployment descriptions describe the system this checkout builds: every service, valid files."""

from __future__ import annotations

import copy
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import kubernetes_validate
import kubernetes_validate.utils
import pytest
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


def k8s_documents() -> list[dict]:
    return [d for f in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


@pytest.mark.parametrize("version", ["1.29", kubernetes_validate.utils.latest_version()])
def test_every_manifest_validates_against_the_kubernetes_schemas(version: str) -> None:
    """Strict: an unknown or misspelt field fails as well as a wrong type (schemas bundled, offline)."""
    for doc in k8s_documents():
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_check_refuses_a_misspelt_field() -> None:
    deployment = next(d for d in k8s_documents() if d["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.29", strict=True)


def test_every_deployment_has_probes_a_drain_and_resources() -> None:
    deployments = {d["metadata"]["name"]: d for d in k8s_documents() if d["kind"] == "Deployment"}
    assert set(deployments) == {f"relay-{s}" for s in SERVICES}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        ports = {p["name"] for p in container["ports"]}
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert {container["readinessProbe"]["httpGet"]["port"], container["livenessProbe"]["httpGet"]["port"]} <= ports
        pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop[0] == "sleep", name
        # the kubelet kills the pod at the end of the grace period, preStop included: leave room to drain
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        drain = float(env.get("GATEWAY_DRAIN_SECONDS") or 10)
        assert pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + drain + 10, name
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, (name, kind)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name


def test_gateways_scale_with_an_hpa_and_a_disruption_budget() -> None:
    docs = k8s_documents()
    gateway = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "relay-gateway")
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    (hpa,) = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "relay-gateway"}
    assert hpa["spec"]["minReplicas"] >= 2
    (pdb,) = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # a node drain never takes every gateway at once
    assert pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]


def test_dockerfiles_pass_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    dockerfiles = sorted((ROOT / "deploy").rglob("Dockerfile*"))
    assert dockerfiles
    found = subprocess.run([str(hadolint), "--no-color", *map(str, dockerfiles)], capture_output=True, text=True)
    assert (found.returncode, found.stdout + found.stderr) == (0, "")


def test_the_image_serves_the_web_pages_socket_io_client() -> None:
    """A fresh clone has no web/node_modules: the image builds socket.io-client itself and says where."""
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    vendor = re.search(r"WEB_VENDOR_DIR=(\S+)", dockerfile)
    assert vendor is not None
    copied = re.search(r"COPY --from=web \S+/socket.io-client/dist (\S+)", dockerfile)
    assert copied is not None and f"/app/{copied.group(1).removeprefix('./')}" == vendor.group(1)
    assert "node_modules" in (ROOT / ".dockerignore").read_text()  # a local install never leaks in


def test_the_image_leaves_out_every_dev_extra() -> None:
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    names = {re.split(r"[<>=\[ ]", requirement)[0].lower() for requirement in dev}
    excluded = re.search(r"grep -v -i -E '\^\(([^)]*)\)'", (ROOT / "deploy" / "Dockerfile").read_text())
    assert excluded is not None
    prefixes = tuple(excluded.group(1).split("|"))  # grep ^(a|b): a prefix leaves out a-xdist too
    assert [name for name in sorted(names) if not name.startswith(prefixes)] == []


def test_only_the_dev_launcher_knows_the_embedded_database() -> None:
    """SecantusDB (GPL-2.0) is a dev/test extra: no service or shared library may import it."""
    offenders = [
        str(path.relative_to(ROOT))
        for base in ("services", "libs")
        for path in (ROOT / base).rglob("*.py")
        if "relay_devstack" not in path.parts and "secantus" in path.read_text().lower()
    ]
    assert offenders == []
