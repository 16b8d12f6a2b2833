"""Every route of the dashboard, for every kind of visitor, by every method; CSRF on every form.

The routes are read from the Starlette app itself, so a route added later is covered at once:
it must have a rule in RULES (who may use it), or the matrix fails naming it. Roles: nobody
signed in, a professional (who cannot sign in but is given a session to test the pages' own
checks), the officer of the incident's school, the officer of another school, a coordinator
and an administrator.
"""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from bot.runtime import Runtime
from bot.settings import Config
from dashboard.texts import Translator
from tests.dashboard.conftest import local_dashboard, sign_in_locally
from tests.dashboard.scenario import BASE, World, force_session, sign_in
from tests.security.routes import endpoints, form_token, parameters, routes
from tests.support.clock import FrozenClock

ROLES = ("anonymous", "professional", "officer_nord", "officer_west", "coordinator", "admin")
OK = "served"  # neither refused nor a server error (each page's own tests check its content)
OPEN = "open"  # served to anyone (the home page sends those signed out to sign in)
SIGN_IN = "to sign-in"  # 303 to /signin
CSRF_REFUSAL = Translator("en")("error.csrf")

# What each kind of route gives each role (by GET, or by POST with the right CSRF token).
EXPECTED: dict[str, dict[str, int | str]] = {
    # Anyone: signing in and out, the language, health, static files.
    "public": dict.fromkeys(ROLES, OPEN),
    # Lists, exports and statistics: officers and coordinators, each limited to what they see.
    "readers": {
        "anonymous": SIGN_IN,
        "professional": 403,
        "officer_nord": 200,
        "officer_west": 200,
        "coordinator": 200,
        "admin": 200,
    },
    # One incident (of the nord school): another school's officer gets 404, as if none.
    "incident": {
        "anonymous": SIGN_IN,
        "professional": 403,
        "officer_nord": 200,
        "officer_west": 404,
        "coordinator": 200,
        "admin": 200,
    },
    # Administration, the audit log, the confidentiality register, members' data.
    "coordinators": {
        "anonymous": SIGN_IN,
        "professional": 403,
        "officer_nord": 403,
        "officer_west": 403,
        "coordinator": OK,
        "admin": OK,
    },
    # The drill simulator exists only in local mode (tested below in local mode).
    "local": dict.fromkeys(ROLES, 404),
}

# Every route, by path and method, and its kind. A route missing here fails the matrix.
RULES: dict[tuple[str, str], str] = {
    ("/", "GET"): "public",
    ("/signin", "GET"): "public",
    ("/login", "GET"): "public",
    ("/login", "POST"): "public",
    ("/logout", "POST"): "public",
    ("/lang/{code}", "GET"): "public",
    ("/healthz", "GET"): "public",
    ("/static", "GET"): "public",
    ("/incidents", "GET"): "readers",
    ("/incidents.csv", "GET"): "readers",
    ("/statistics", "GET"): "readers",
    ("/incidents/{code}", "GET"): "incident",
    ("/incidents/{code}/report", "GET"): "incident",
    ("/incidents/{code}/report.pdf", "GET"): "incident",
    ("/admin", "GET"): "coordinators",
    ("/admin/schools", "GET"): "coordinators",
    ("/admin/officers", "GET"): "coordinators",
    ("/admin/officers/{school}", "POST"): "coordinators",
    ("/admin/members", "GET"): "coordinators",
    ("/admin/members/{member_id:int}/active", "POST"): "coordinators",
    ("/admin/members/{member_id:int}/export", "POST"): "coordinators",
    ("/admin/codes", "GET"): "coordinators",
    ("/admin/codes", "POST"): "coordinators",
    ("/admin/codes/{code_id:int}/revoke", "POST"): "coordinators",
    ("/audit", "GET"): "coordinators",
    ("/confidentiality", "GET"): "coordinators",
    ("/confidentiality", "POST"): "coordinators",
    ("/confidentiality.csv", "GET"): "coordinators",
    ("/confidentiality.json", "GET"): "coordinators",
    ("/confidentiality/new", "GET"): "coordinators",
    ("/confidentiality/{entry_id:int}", "GET"): "coordinators",
    ("/confidentiality/{entry_id:int}", "POST"): "coordinators",
    ("/confidentiality/{entry_id:int}/edit", "GET"): "coordinators",
    ("/drill", "GET"): "local",
    ("/drill/start", "POST"): "local",
    ("/drill/press", "POST"): "local",
    ("/drill/say", "POST"): "local",
    ("/drill/command", "POST"): "local",
    ("/drill/ack", "POST"): "local",
    ("/drill/forward", "POST"): "local",
}


def judge(expected: int | str, response: httpx.Response) -> bool:
    status = response.status_code
    to_sign_in = status == 303 and response.headers.get("location") == "/signin"
    if expected == SIGN_IN:
        return to_sign_in
    if expected == OK:
        return status < 500 and status != 403 and not to_sign_in
    if expected == OPEN:
        return status < 500 and status != 403
    return status == expected


async def visitor(
    client: httpx.AsyncClient, app: Starlette, runtime: Runtime, world: World, role: str
) -> None:
    """Make the client this role: signed in by a link, or given a session (professionals)."""
    if role == "anonymous":
        return
    member = {
        "professional": world.professional,
        "officer_nord": world.officer_nord,
        "officer_west": world.officer_west,
        "coordinator": world.coordinator,
        "admin": world.admin,
    }[role]
    if role == "professional":
        await force_session(client, app, runtime, member.id)
    else:
        assert (await sign_in(client, runtime, member.id)).status_code == 303


def test_every_route_has_a_rule(app: Starlette) -> None:
    unruled = [f"{method} {path}" for path, method in routes(app) if (path, method) not in RULES]
    assert not unruled, (
        f"route(s) without a rule in tests/security/test_dashboard_matrix.py RULES: {unruled}; "
        "say who may use them"
    )
    stale = sorted(set(RULES) - set(routes(app)))
    assert not stale, f"RULES name routes the dashboard no longer has: {stale}"


async def test_every_route_for_every_role_and_method(
    app: Starlette, runtime: Runtime, world: World
) -> None:
    values = await parameters(runtime, world)
    every = endpoints(app, values)
    allowed: dict[str, set[str]] = {}
    for endpoint in every:
        allowed.setdefault(endpoint.url, set()).add(endpoint.method)
    wrong: list[str] = []
    transport = httpx.ASGITransport(app=app)
    # Coordinators last: what they post changes the world (a member deactivated, say).
    for role in ROLES:
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            await visitor(client, app, runtime, world, role)
            token = await form_token(client)
            for endpoint in every:
                if endpoint.method == "GET":
                    response = await client.get(endpoint.url)
                else:
                    response = await client.post(endpoint.url, data={"csrf": token})
                expected = EXPECTED[RULES[(endpoint.path, endpoint.method)]][role]
                if expected == SIGN_IN and endpoint.method == "POST":
                    expected = 403  # a form posted signed out is refused, not redirected
                if not judge(expected, response):
                    wrong.append(
                        f"{role} {endpoint.method} {endpoint.url}: {response.status_code}, "
                        f"expected {expected}"
                    )
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        for url, methods in allowed.items():
            for method in {"GET", "POST", "PUT", "DELETE", "PATCH"} - methods:
                if url.startswith("/static") and method != "GET":
                    continue  # static files answer 405 their own way
                response = await client.request(method, url)
                if response.status_code != 405:
                    wrong.append(f"{method} {url}: {response.status_code}, expected 405")
    assert wrong == [], "\n".join(wrong)


async def test_every_post_needs_the_csrf_token_of_its_own_session(
    app: Starlette, runtime: Runtime, world: World
) -> None:
    values = await parameters(runtime, world)
    posts = [e for e in endpoints(app, values) if e.method == "POST"]
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url=BASE) as coordinator,
        httpx.AsyncClient(transport=transport, base_url=BASE) as admin,
        httpx.AsyncClient(transport=transport, base_url=BASE) as stranger,
    ):
        await visitor(coordinator, app, runtime, world, "coordinator")
        await visitor(admin, app, runtime, world, "admin")
        others = await form_token(admin)  # a real token, of someone else's session
        anonymous = await form_token(stranger)  # and of a visitor signed in as nobody
        for endpoint in posts:
            for form in (
                {},
                {"csrf": ""},
                {"csrf": "0" * 64},
                {"csrf": others},
                {"csrf": anonymous},
            ):
                response = await coordinator.post(endpoint.url, data=form)
                assert response.status_code in (403, 404), (endpoint.url, form)
                if response.status_code == 403:
                    assert CSRF_REFUSAL in response.text, (endpoint.url, form)
            response = await stranger.post(endpoint.url, data={"csrf": others})
            assert response.status_code in (403, 404), endpoint.url
    # The refused posts changed nothing: the coordinator is still signed in, nobody deactivated.
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as again:
        await visitor(again, app, runtime, world, "coordinator")
        members = await again.get("/admin/members")
        assert members.status_code == 200
        assert "Reactivate" not in members.text


async def test_the_drill_simulator_in_local_mode(
    config: Config, database_url: str, clock: FrozenClock
) -> None:
    async with local_dashboard(config, database_url, clock) as (runtime, app):
        local = [(p, m) for p, m in routes(app) if RULES.get((p, m)) == "local"]
        assert local, "the local mode has no drill routes"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as nobody:
            for path, method in local:
                response = await nobody.request(method, path)
                expected = SIGN_IN if method == "GET" else 403
                assert judge(expected, response), (path, method, response.status_code)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as trainer:
            await sign_in_locally(trainer, runtime)
            token = await form_token(trainer)
            for path, method in local:
                response = await trainer.request(
                    method, path, data={"csrf": token} if method == "POST" else None
                )
                assert judge(OK, response), (path, method, response.status_code)
                if method == "POST":
                    refused = await trainer.post(path, data={})
                    assert refused.status_code == 403, path
                    assert CSRF_REFUSAL in refused.text
