"""The reference deployment (docs/deploy/) cannot run here (no container runtime, no
cluster): what can be checked is that it parses, names only settings casetrack reads and
runs only command lines casetrack accepts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.cli.main import _parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy"
# The modules that read casetrack's environment variables (adapters/settings.py says so).
READERS = (ROOT / "adapters" / "settings.py", ROOT / "consumers" / "kafka" / "security.py")
FILES = sorted(DEPLOY.glob("*.yaml"))


def documents(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key), value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def variables(doc: Any) -> set[str]:
    """Every variable a Compose service (environment) or a Kubernetes object (ConfigMap
    data, a container's env) sets."""
    names: set[str] = set()
    if isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
        names |= set(doc.get("data", {}))
    for key, value in walk(doc):
        if key == "environment" and isinstance(value, dict):
            names |= {k for k in value if k != "<<"}
        elif key == "env" and isinstance(value, list):
            names |= {item["name"] for item in value}
    return names


def command_lines(doc: Any) -> list[list[str]]:
    """The `casetrack` arguments of every Compose service and Kubernetes container (both
    run the image, whose entrypoint is `casetrack`)."""
    found = []
    for key, value in walk(doc):
        if key == "services":
            found += [s["command"] for s in value.values() if "casetrack" in str(s.get("image"))]
        elif key == "containers":
            found += [c["args"] for c in value]
    return found


def test_there_is_a_compose_file_and_kubernetes_manifests() -> None:
    assert {p.name for p in FILES} >= {"compose.yaml", "kubernetes.yaml"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_casetrack_variable_it_sets_is_one_casetrack_reads(path: Path) -> None:
    read = set(re.findall(r'"(CASETRACK_[A-Z0-9_]+)"', "".join(r.read_text() for r in READERS)))
    named = {n for doc in documents(path) for n in variables(doc) if n.startswith("CASETRACK_")}
    assert named, "no settings found: the walk above no longer matches the file"
    assert named - read == set()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_command_line_is_one_casetrack_accepts(path: Path) -> None:
    lines = [line for doc in documents(path) for line in command_lines(doc)]
    assert {line[0] for line in lines} >= {"consume", "project", "serve", "notify"}
    for line in lines:
        _parser().parse_args(line)  # exits (SystemExit) on an unknown command or flag


def test_every_long_running_process_has_two_replicas_or_more() -> None:
    compose = documents(DEPLOY / "compose.yaml")[0]["services"]
    for name in ("consume", "project", "serve", "notify"):
        assert compose[name]["deploy"]["replicas"] >= 2
    deployments = [d for d in documents(DEPLOY / "kubernetes.yaml") if d["kind"] == "Deployment"]
    assert len(deployments) == 4
    assert all(d["spec"]["replicas"] >= 2 for d in deployments)


# Where each long-running process answers its probes: (liveness path, readiness path) and
# the argument that names the port (docs/deployment.md, "Probes").
PROBE_PATHS = {"serve": ("/healthz", "/readyz"), "consume": ("/livez", "/readyz"),
               "project": ("/livez", "/readyz"), "notify": ("/livez", "/readyz")}  # fmt: skip


def probe_port(line: list[str], env: dict[str, Any]) -> int | None:
    """The port the process on this command line serves its probes on: the API's own
    port; a daemon's --probe-port, else CASETRACK_PROBE_PORT; None when it serves none."""
    args = _parser().parse_args(line)
    if line[0] == "serve":
        return int(args.port)
    port = args.probe_port or env.get("CASETRACK_PROBE_PORT")
    return None if port is None else int(port)


def kubernetes_containers() -> dict[str, dict[str, Any]]:
    deployments = [d for d in documents(DEPLOY / "kubernetes.yaml") if d["kind"] == "Deployment"]
    return {
        c["args"][0]: {**c, "grace": d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]}
        for d in deployments
        for c in d["spec"]["template"]["spec"]["containers"]
    }


def test_every_kubernetes_process_has_probes_on_the_port_it_serves_them_on() -> None:
    containers = kubernetes_containers()
    assert set(containers) == set(PROBE_PATHS)
    for name, container in containers.items():
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        port = probe_port(container["args"], env)
        assert port is not None, f"{name} is not told to serve probes"
        named = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        for kind, path in zip(("livenessProbe", "readinessProbe"), PROBE_PATHS[name], strict=True):
            assert kind in container, f"{name} has no {kind}"
            get = container[kind]["httpGet"]
            assert get["path"] == path, f"{name}'s {kind}"
            assert named.get(get["port"], get["port"]) == port, f"{name}'s {kind} port"


def test_every_compose_process_checks_both_probes_on_the_port_it_serves_them_on() -> None:
    services = documents(DEPLOY / "compose.yaml")[0]["services"]
    for name, paths in PROBE_PATHS.items():
        service = services[name]
        port = probe_port(service["command"], service.get("environment", {}))
        assert port is not None, f"{name} is not told to serve probes"
        assert "healthcheck" in service, f"{name} has no healthcheck"
        check = " ".join(service["healthcheck"]["test"])
        base = re.findall(r"http://127\.0\.0\.1:(\d+)", check)
        assert base and {int(b) for b in base} == {port}, f"{name}'s healthcheck port"
        for path in paths:
            assert f"'{path}'" in check, f"{name}'s healthcheck lacks {path}"


def test_grace_periods_cover_the_documented_sigterm_bounds() -> None:
    """serve: its preStop pause + --shutdown-seconds + up to 10 s for queued mail must end
    before the kubelet's SIGKILL; the daemons' bounds (a batch, a message, a page) are
    written against the default 30 s (docs/deployment.md, "SIGTERM")."""
    containers = kubernetes_containers()
    serve = containers["serve"]
    pause = serve["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    shutdown = _parser().parse_args(serve["args"]).shutdown_seconds
    assert serve["grace"] > int(pause[1]) + shutdown + 10
    assert all(c["grace"] >= 30 for c in containers.values())
    services = documents(DEPLOY / "compose.yaml")[0]["services"]
    compose_shutdown = _parser().parse_args(services["serve"]["command"]).shutdown_seconds
    assert int(services["serve"]["stop_grace_period"].rstrip("s")) >= compose_shutdown + 10
