"""The dashboard's routes as the security tests walk them: every path, method and parameter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from bot.runtime import Runtime
from storage.models import Role
from storage.repositories import Enrollment
from tests.dashboard.scenario import World, csrf_of


@dataclass(frozen=True)
class Endpoint:
    """One route by one method, with the address to call."""

    path: str  # as declared, e.g. /incidents/{code}
    method: str
    url: str  # with its parameters filled in


def routes(app: Starlette) -> Iterator[tuple[str, str]]:
    """(path, method) of every route of the app (GET for mounted static files)."""
    for route in app.routes:
        if isinstance(route, Mount):
            yield route.path, "GET"
        elif isinstance(route, Route):
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                yield route.path, method
        else:  # pragma: no cover - the dashboard has no other kind
            raise AssertionError(f"unknown kind of route {route!r}")


def fill(path: str, values: dict[str, str]) -> str:
    """A route's address with its parameters filled in (an unknown parameter fails)."""
    if path == "/static":
        return "/static/style.css"
    url = path
    while "{" in url:
        name = url.split("{", 1)[1].split("}", 1)[0]
        key = name.split(":", 1)[0]
        assert key in values, f"route {path}: no test value for its parameter {{{key}}}"
        url = url.replace("{" + name + "}", values[key])
    return url


async def parameters(runtime: Runtime, world: World) -> dict[str, str]:
    """A value for each path parameter: the nord incident, a real member, code, entry."""
    async with runtime.sessions() as session, session.begin():
        _, code = await Enrollment(session).create_code(
            Role.OFFICER, "nord", runtime.clock.now(), runtime.settings.config.enrollment.code_ttl
        )
    return {
        "code": world.nord,  # an incident code (and, for /lang/{code}, taken as a language)
        "school": "nord",
        "member_id": str(world.professional_west.id),
        "code_id": str(code.id),
        "entry_id": "1",
    }


def endpoints(app: Starlette, values: dict[str, str]) -> list[Endpoint]:
    found = [Endpoint(path, method, fill(path, values)) for path, method in routes(app)]
    # Signing out ends the session the rest needs: last.
    return sorted(found, key=lambda e: e.path == "/logout")


async def form_token(client: httpx.AsyncClient) -> str:
    """The CSRF token of the client's session (or pre-session), from a page with a form."""
    page = await client.get("/login?token=x")
    return csrf_of(page.text)
