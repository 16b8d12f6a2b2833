"""The dashboard served by uvicorn inside the program's event loop, until told to stop."""

from __future__ import annotations

import asyncio

import httpx

from bot.runtime import Runtime
from dashboard.server import serve_dashboard
from tests.dashboard.conftest import SECRET
from tests.support.webhook import free_port


async def test_serves_until_the_stop_event(runtime: Runtime) -> None:
    port = free_port()
    stop = asyncio.Event()
    server = asyncio.create_task(
        serve_dashboard(runtime, "127.0.0.1", port, stop, local_mode=False, secret=SECRET)
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(100):
            try:
                answer = await client.get("/healthz")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.05)
        assert answer.text == "ok"
        signin = await client.get("/signin")
        assert signin.status_code == 200
    stop.set()
    await asyncio.wait_for(server, 10)
