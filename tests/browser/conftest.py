"""Browser tests: a whole Relay (two gateway replicas) driven by Debian's Chromium through Playwright.

Chromium comes from Debian's packages (`task install:system`, or installed here when missing);
Playwright never downloads a browser. Screenshots land in tests/browser/artifacts/ (gitignored).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from relay_devstack import Stack

from tests.e2e.conftest import relay_stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).parent / "artifacts"
VENDOR = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"


def _ensure_chromium() -> str:
    if not Path(CHROMIUM).exists():
        # Debian's build, never one Playwright downloads (same as `task install:system`)
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            pytest.fail(f"{CHROMIUM} is missing: run `task install:system` (apt-get install chromium)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=False, env=env, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"], check=True, env=env, timeout=900
        )
    return CHROMIUM


def _ensure_socketio_client() -> None:
    if not VENDOR.exists():
        web = VENDOR.parents[3]
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=web, check=True, timeout=600)


@pytest.fixture(scope="session")
def web_stack(instance: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _ensure_socketio_client()
    name = f"{instance}-web"  # its own instance: never shares queues or data with the e2e stack
    logs = tmp_path_factory.mktemp("web-stack-logs")
    with relay_stack(name, logs, env={"LOG_LEVEL": "DEBUG"}, mongo_url=os.environ.get("MONGO_URL") or None) as running:
        yield running


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    path = _ensure_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


class Pages:
    """Fresh browser contexts (separate cookie jars) on a given replica; closed after the test."""

    def __init__(self, browser: Browser, stack: Stack) -> None:
        self.browser = browser
        self.stack = stack
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    async def open(self, path: str, replica: int = 0, *, width: int = 1100, height: int = 800) -> Page:
        context = await self.browser.new_context(
            base_url=self.stack.gateway_urls[replica], viewport={"width": width, "height": height}
        )
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        await page.goto(path)
        return page

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


@pytest.fixture
async def pages(browser: Browser, web_stack: Stack) -> AsyncIterator[Pages]:
    made = Pages(browser, web_stack)
    yield made
    await made.close()
    assert not made.errors, f"uncaught errors in the page: {made.errors}"


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
