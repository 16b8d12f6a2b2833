"""Signing in with a single-use link, signing out, and the language toggle."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dashboard.security import LANGUAGE_COOKIE, SESSION_COOKIE
from dashboard.texts import LANGUAGES
from dashboard.web import READERS, Visit, dashboard_of, page
from storage.repositories import LoginError, LoginTokens, WebSessions


@page(roles=None)
async def home(visit: Visit) -> Response:
    """The incidents for the signed in, how to sign in for the others."""
    return RedirectResponse("/incidents" if visit.viewer else "/signin", status_code=303)


@page(roles=None)
async def signin(visit: Visit) -> Response:
    """How to get a sign-in link."""
    return visit.render("signin.html", token=None)


@page(roles=None)
async def confirm(visit: Visit) -> Response:
    """A sign-in link was opened: a button signs in (link previews only GET, so cannot)."""
    token = visit.request.query_params.get("token", "")
    return visit.render("signin.html", token=token[:200])


@page(roles=None)
async def login(visit: Visit) -> Response:
    """Redeem a sign-in link and open a session."""
    dashboard = visit.dashboard
    t = visit.t
    now = dashboard.now()
    async with dashboard.sessions() as session, session.begin():
        try:
            member = await LoginTokens(session).redeem(visit.field("token"), now)
        except LoginError as error:
            await visit.audit(session, "sign_in_refused", data={"problem": error.problem.value})
            problem = error.problem.value
        else:
            if member.role not in READERS:
                await visit.audit(
                    session, "sign_in_refused", data={"problem": "role"}, member_id=member.id
                )
                problem = "not_allowed"
            else:
                sessions = WebSessions(session)
                if visit.session_token is not None:
                    await sessions.end(visit.session_token, now)  # one session per browser
                token = await sessions.open(member.id, now, dashboard.options.session_lifetime)
                await visit.audit(session, "sign_in", member_id=member.id)
                problem = ""
    if problem:
        return visit.message(t("signin.refused"), t(f"signin.{problem}"), 400)
    response = RedirectResponse("/incidents", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        dashboard.guard.seal(token),
        max_age=int(dashboard.options.session_lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=dashboard.options.secure,
        path="/",
    )
    return response


@page(roles=None)
async def logout(visit: Visit) -> Response:
    """End the session (whatever the member's role)."""
    dashboard = visit.dashboard
    async with dashboard.sessions() as session, session.begin():
        if visit.session_token is not None:
            await WebSessions(session).end(visit.session_token, dashboard.now())
        await visit.audit(session, "sign_out")
    response = visit.message(visit.t("signed_out.title"), visit.t("signed_out.text"), 200)
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=dashboard.options.secure, httponly=True, samesite="lax"
    )
    return response


async def language(request: Request) -> Response:
    """Switch the pages' language, then go back where the viewer was."""
    dashboard = dashboard_of(request)
    chosen = request.path_params["code"]
    back = request.query_params.get("next", "/")
    if not back.startswith("/") or back.startswith("//") or "\\" in back:
        back = "/"
    response = RedirectResponse(back, status_code=303)
    if chosen in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            chosen,
            max_age=365 * 86400,
            httponly=True,
            samesite="lax",
            secure=dashboard.options.secure,
            path="/",
        )
    return response


ROUTES = [
    Route("/", home),
    Route("/signin", signin),
    Route("/login", confirm, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/lang/{code}", language),
]
