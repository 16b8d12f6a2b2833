"""Serving the dashboard with uvicorn inside the program's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette

from bot.runtime import Runtime
from dashboard.app import create_app
from dashboard.options import DashboardOptions

log = logging.getLogger(__name__)


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to the program it runs in."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """The program handles SIGINT and SIGTERM itself (it sets the stop event)."""
        yield


async def serve_app(app: Starlette, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve an ASGI app on host:port until ``stop`` is set."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
    server = EmbeddedServer(config)
    task = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # it stopped by itself: say why
            if not server.started:
                raise RuntimeError(f"the dashboard could not listen on {host}:{port}")
    finally:
        server.should_exit = True
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        await task


async def serve_dashboard(
    runtime: Runtime,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    local_mode: bool,
    secret: bytes,
    options: DashboardOptions | None = None,
) -> None:
    """Serve the dashboard of a runtime until ``stop`` is set (next to the bot, or alone)."""
    app = create_app(runtime, local_mode=local_mode, secret=secret, options=options)
    log.info("dashboard on http://%s:%d", host, port)
    await serve_app(app, host, port, stop)
