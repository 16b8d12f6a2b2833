"""Browser tests: the dashboard served by uvicorn, driven by a real Chromium through Playwright."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from bot.runtime import Runtime
from bot.settings import Config
from dashboard.app import create_app
from dashboard.clock import ShiftedClock
from dashboard.options import DashboardOptions
from dashboard.server import serve_app
from tests.conftest import settings_for
from tests.dashboard.conftest import SECRET
from tests.dashboard.scenario import World, build_world
from tests.support.clock import FrozenClock
from tests.support.databases import in_ci
from tests.support.messenger import RecordingMessenger
from tests.support.webhook import free_port

CHROMIUM = Path(os.environ.get("SEXTO_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
async def database_url(tmp_path: Path) -> str:
    """Browser tests run on SQLite only (the pages' queries are tested on both backends)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'sexto.db'}"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless (skipped without it, except in CI where it must be there)."""
    if not CHROMIUM.exists():
        problem = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if in_ci():
            pytest.fail(f"{problem}; CI=true: the browser tests must run")
        pytest.skip(problem)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@dataclass
class Served:
    """The dashboard in local mode on a real port, with a world of incidents."""

    url: str
    runtime: Runtime
    world: World
    clock: FrozenClock


@pytest.fixture
async def served(config: Config, database_url: str, clock: FrozenClock) -> AsyncIterator[Served]:
    """Incidents made through the guide, then the dashboard served by uvicorn."""
    runtime = Runtime.create(settings_for(config, database_url), clock=ShiftedClock(clock))
    runtime.escalator.messenger = RecordingMessenger()
    await runtime.prepare_database()
    world = await build_world(runtime, clock)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(
        runtime,
        local_mode=True,
        secret=SECRET,
        options=DashboardOptions(base_url=url, secure_cookies=False),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve_app(app, "127.0.0.1", port, stop))
    try:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            break
        yield Served(url, runtime, world, clock)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await runtime.close()


def keep_screenshot(path: Path) -> None:
    """Copy a screenshot where a person can look at it (SEXTO_SCREENSHOT_DIR), if asked."""
    folder = os.environ.get("SEXTO_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)
