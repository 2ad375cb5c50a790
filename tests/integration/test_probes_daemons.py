"""The daemons' probes (adapters.probes) in real processes: `casetrack project`,
`notify` and `consume` answer /livez and /readyz on --probe-port (or
CASETRACK_PROBE_PORT); with PostgreSQL cut off (a TCP proxy in front of it) they stay
live, waiting it out, and are not ready until it is back; SIGTERM still exits 0."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from adapters.kafka_broker import free_port
from tests import cli_process
from tests.integration.tcp_proxy import TcpProxy


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    running = TcpProxy(database_url).start()
    yield running
    running.close()


def probe(port: int, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, {}  # not listening yet


def answers(port: int, path: str, status: int, timeout: float = 60.0) -> dict[str, object]:
    """Wait (bounded) until ``path`` answers ``status``; its body."""
    deadline = time.monotonic() + timeout
    while True:
        found, body = probe(port, path)
        if found == status:
            return body
        assert time.monotonic() < deadline, f"{path}: {found} {body}, not {status}"
        time.sleep(0.2)


def outage_and_back(port: int, proxy: TcpProxy) -> None:
    answers(port, "/readyz", 200)
    assert probe(port, "/livez") == (200, {"status": "ok"})
    proxy.cut()
    body = answers(port, "/readyz", 503, timeout=20)
    assert "database" in body["failing"]  # type: ignore[operator]
    assert probe(port, "/livez")[0] == 200, "waiting out an outage is not a stalled loop"
    proxy.restore()
    answers(port, "/readyz", 200)


@pytest.mark.parametrize(
    "args", [["project", "--poll-interval", "0.5"], ["notify", "--poll-interval", "0.5"]]
)
def test_project_and_notify_probes_follow_the_database(
    cli_env: dict[str, str], proxy: TcpProxy, args: list[str]
) -> None:
    port = free_port()
    env = {**cli_env, "CASETRACK_DATABASE_URL": proxy.url, "CASETRACK_PROBE_PORT": str(port)}
    with cli_process.running(args, env) as proc:
        outage_and_back(port, proxy)
        cli_process.stop_with_sigterm(proc, within=20)


def test_consume_probes_follow_the_database_and_the_broker(
    cli_env: dict[str, str], proxy: TcpProxy, kafka: str, topic: str, group: str
) -> None:
    port = free_port()
    env = {**cli_env, "CASETRACK_DATABASE_URL": proxy.url}
    args = ["consume", "--bootstrap-servers", kafka, "--topic", topic, "--group", group]
    with cli_process.running([*args, "--probe-port", str(port)], env) as proc:
        outage_and_back(port, proxy)
        cli_process.stop_with_sigterm(proc, within=20)
    closed = f"127.0.0.1:{free_port()}"  # no broker there
    broker_away = ["consume", "--bootstrap-servers", closed, "--topic", topic, "--group", group]
    with cli_process.running([*broker_away, "--probe-port", str(port)], env) as proc:
        assert answers(port, "/readyz", 503)["failing"] == ["broker"]
        assert probe(port, "/livez")[0] == 200
        cli_process.stop_with_sigterm(proc, within=20)


def test_a_probe_port_that_is_no_port_is_refused(cli_env: dict[str, str]) -> None:
    done = cli_process.run(["project", "--probe-port", "70000"], cli_env)
    assert done.returncode == 2 and "--probe-port" in done.stderr
    env = {**cli_env, "CASETRACK_PROBE_PORT": "http"}
    done = cli_process.run(["project"], env)
    assert done.returncode == 2 and "CASETRACK_PROBE_PORT" in done.stderr
