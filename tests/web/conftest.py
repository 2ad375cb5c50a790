"""The tracker's web pages in a real browser: the OS's Chromium driven by Playwright,
against the app served by uvicorn on loopback, over a real PostgreSQL schema of generated
files and a real SMTP sink. One browser and one site (schema, server, mailbox) per module:
each test opens its own browser context (its own cookies).

Every page a test visits goes through ``Visit.check``: axe-core (zero violations) and a
screenshot at 1280 and 375 px into build/screenshots/ (gitignored).
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright import sync_api as playwright_sync

from adapters.bootstrap import http_app
from adapters.smtp_sink import start as start_sink
from tests.api.conftest import Clock, Files, Mailbox, free_port, load_files, settings_for
from tests.vault import TEST_VAULT, vault_env

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
WIDTHS = (1280, 375)


@dataclass
class Site:
    url: str
    mailbox: Mailbox
    files: Files
    store: Any
    secret_key: bytes
    cli_env: dict[str, str]  # `casetrack` on the site's schema (tests.cli_process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module: Playwright's sync API keeps an event loop running in the thread while
    it is open, and under `pytest -n 2` a worker goes on to other files (asyncio.run)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium (.ci/run installs it)")
    with playwright_sync.sync_playwright() as p:
        found = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield found
        found.close()


@pytest.fixture(scope="module")
def site(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from adapters.postgres.event_store import CaseStore
    from adapters.postgres.schema import drop_schema, init_schema

    schema = f"t_{secrets.token_hex(6)}"
    init_schema(database_url, schema)
    store = CaseStore(database_url, schema, TEST_VAULT)
    port = free_port()
    controller = start_sink(tmp_path_factory.mktemp("mail"), "127.0.0.1", port)
    mailbox = Mailbox(controller.handler, port)
    secret_key = secrets.token_bytes(32)
    try:
        files = load_files(store, cases=60, seed=21)
        app = http_app(settings_for(database_url, schema, mailbox, Clock(), secret_key=secret_key))
        server_port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=server_port, log_level="error")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        try:
            cli_env = {
                **os.environ,
                "CASETRACK_DATABASE_URL": database_url,
                "CASETRACK_SCHEMA": schema,
                "CASETRACK_SIGNING_KEY": str(tmp_path_factory.mktemp("keys") / "signing.key"),
                "CASETRACK_LOG_LEVEL": "error",
                **vault_env(),
            }
            url = f"http://127.0.0.1:{server_port}"
            yield Site(url, mailbox, files, store, secret_key, cli_env)
        finally:
            server.should_exit = True
            thread.join(30)
    finally:
        controller.stop()
        store.close()
        drop_schema(database_url, schema)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


class Visit:
    """One person's browser (a context of its own) on the site."""

    def __init__(self, browser: Any, site: Site, screenshots: Path) -> None:
        self.context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900})
        self.page = self.context.new_page()
        self.site = site
        self.screenshots = screenshots

    def go(self, path: str) -> Any:
        return self.page.goto(self.site.url + path)

    def check(self, name: str) -> None:
        """No axe-core violation on the page as it is; screenshots at each width."""
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(self.page)
        assert results.violations_count == 0, results.generate_report()
        self.page.set_viewport_size({"width": 320, "height": 900})  # the narrowest phones
        assert self.page.evaluate("document.documentElement.scrollWidth") <= 320, name
        for width in WIDTHS:
            self.page.set_viewport_size({"width": width, "height": 900})
            self.page.screenshot(path=self.screenshots / f"{name}-{width}.png", full_page=True)
        self.page.set_viewport_size({"width": WIDTHS[0], "height": 900})

    def session_token(self) -> str:
        (cookie,) = [c for c in self.context.cookies() if c["name"] == "ct_session"]
        return str(cookie["value"])

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Any, site: Site, screenshots: Path) -> Iterator[Any]:
    opened: list[Visit] = []

    def make() -> Visit:
        found = Visit(browser, site, screenshots)
        opened.append(found)
        return found

    yield make
    for found in opened:
        found.close()
