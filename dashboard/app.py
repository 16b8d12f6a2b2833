"""The dashboard's web application: built from the runtime by :func:`create_app`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.runtime import Runtime
from dashboard import administration, confidentiality, drills, pages, portability, signin
from dashboard.options import DashboardOptions
from dashboard.security import Guard
from dashboard.simulator import Simulator
from dashboard.web import Dashboard, SecurityHeaders, dashboard_of

STATIC = Path(__file__).resolve().parent / "static"


async def health(request: Request) -> Response:
    """For supervisors and tests: the dashboard answers."""
    return PlainTextResponse("ok")


async def _error(request: Request, exc: Exception) -> Response:
    dashboard = dashboard_of(request)
    visit = await dashboard.visit(request)
    t = visit.t
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return visit.message(t("error.not_found"), t("error.not_found_text"), 404)
    return visit.message(t("error.bad_request"), t("error.bad_request"), status)


def create_app(
    runtime: Runtime,
    *,
    local_mode: bool,
    secret: bytes,
    options: DashboardOptions | None = None,
    simulator: Simulator | None = None,
) -> Starlette:
    """The dashboard for a runtime.

    In local mode it also serves the drill simulator: unless one is given, a simulator is made
    on the runtime and attached to its escalator (messages kept, wake-ups by the runtime's
    clock), and while the app is served it sends what comes due every second.
    """
    if len(secret) < 16:
        raise ValueError("the dashboard secret is too short")
    options = options or DashboardOptions.from_config(runtime.settings.config)
    if local_mode and simulator is None:
        simulator = Simulator.for_runtime(runtime)
        simulator.attach()
    dashboard = Dashboard(runtime, options, Guard(secret), local_mode, simulator)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = None
        if dashboard.local_mode and dashboard.simulator is not None:
            await dashboard.simulator.recover()
            task = asyncio.create_task(dashboard.simulator.run(stop))
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task

    routes = [
        *signin.ROUTES,
        *pages.ROUTES,
        *administration.ROUTES,
        *portability.ROUTES,
        *confidentiality.ROUTES,
        *drills.ROUTES,
        Route("/healthz", health),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={404: _error, 405: _error},
        lifespan=lifespan,
    )
    app.state.dashboard = dashboard
    return app
