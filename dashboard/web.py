"""What every page shares: who is visiting, their language, CSRF checks, rendering, auditing."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import jinja2
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.runtime import Runtime
from dashboard.access import Viewer, viewer_for
from dashboard.options import DashboardOptions
from dashboard.presentation import local_time
from dashboard.security import (
    CSRF_FIELD,
    LANGUAGE_COOKIE,
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    Guard,
)
from dashboard.simulator import Simulator
from dashboard.texts import LANGUAGES, Translator
from storage.models import Role
from storage.repositories import MAX_ROW_ID, AuditLog, Members, WebSessions

TEMPLATES = Path(__file__).resolve().parent / "templates"
READERS = (Role.OFFICER, Role.COORDINATOR, Role.ADMIN)
COORDINATORS = (Role.COORDINATOR, Role.ADMIN)
SECURITY_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
)


def preferred(accept_language: str) -> str | None:
    """The first of our languages in an Accept-Language header, if any."""
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return None


class Dashboard:
    """The dashboard's collaborators, handed to every page."""

    def __init__(
        self,
        runtime: Runtime,
        options: DashboardOptions,
        guard: Guard,
        local_mode: bool,
        simulator: Simulator | None,
    ) -> None:
        self.runtime = runtime
        self.options = options
        self.guard = guard
        self.local_mode = local_mode
        self.simulator = simulator
        self.config = runtime.settings.config
        self.protocol = runtime.protocol
        self.zone = runtime.settings.config.zone
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """Database sessions."""
        return self.runtime.sessions

    def now(self) -> datetime:
        """The program's one clock."""
        return self.runtime.clock.now()

    def local(self, moment: datetime | None, with_seconds: bool = False) -> str:
        """A stored time in the display zone."""
        return local_time(moment, self.zone, with_seconds)

    async def visit(self, request: Request) -> Visit:
        """Who is asking, in which language, with which CSRF token."""
        token = self.guard.unseal(request.cookies.get(SESSION_COOKIE))
        viewer: Viewer | None = None
        if token is not None:
            async with self.sessions() as session:
                row = await WebSessions(session).active(token, self.now())
                member = await Members(session).get(row.member_id) if row else None
                if member is not None and member.active:
                    viewer = await viewer_for(session, member)
        presession = self.guard.unseal(request.cookies.get(PRESESSION_COOKIE))
        new_presession = None
        if viewer is None and presession is None:
            presession = new_presession = self.guard.fresh()
        chosen = request.cookies.get(LANGUAGE_COOKIE)
        if chosen in LANGUAGES:
            language = str(chosen)
        elif viewer is not None and viewer.language in LANGUAGES:
            language = viewer.language
        else:
            accepted = preferred(request.headers.get("accept-language", ""))
            language = accepted or self.config.default_language
        base = token if viewer is not None else presession
        assert base is not None  # noqa: S101 - one of the two is always set
        return Visit(
            dashboard=self,
            request=request,
            viewer=viewer,
            session_token=token if viewer is not None else None,
            csrf_base=base,
            new_presession=new_presession,
            t=Translator(language),
        )


@dataclass
class Visit:
    """One request: the dashboard, the viewer (None: signed out), language and CSRF token."""

    dashboard: Dashboard
    request: Request
    viewer: Viewer | None
    session_token: str | None
    csrf_base: str
    new_presession: str | None
    t: Translator
    form: FormData | None = None

    @property
    def language(self) -> str:
        """The language pages are shown in."""
        return self.t.language

    @property
    def csrf(self) -> str:
        """The token every form of this visit carries."""
        return self.dashboard.guard.csrf(self.csrf_base)

    @property
    def me(self) -> Viewer:
        """The signed-in viewer (pages that need one are only reached signed in)."""
        if self.viewer is None:
            raise PermissionError("not signed in")
        return self.viewer

    def field(self, name: str) -> str:
        """A posted form field, as text ('' when absent)."""
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else ""

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A page."""
        dashboard = self.dashboard
        page = dashboard.templates.get_template(template)
        html = page.render(
            t=self.t,
            visit=self,
            viewer=self.viewer,
            csrf=self.csrf,
            csrf_field=CSRF_FIELD,
            local_mode=dashboard.local_mode,
            path=self.request.url.path,
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        self.finish(response)
        return response

    def message(self, title: str, text: str, status: int) -> HTMLResponse:
        """A page that only says something (errors, refusals)."""
        return self.render("message.html", status=status, title=title, text=text)

    def finish(self, response: Response) -> None:
        """Set the cookies this visit needs on a response."""
        if self.new_presession is not None:
            response.set_cookie(
                PRESESSION_COOKIE,
                self.dashboard.guard.seal(self.new_presession),
                max_age=3600,
                httponly=True,
                samesite="lax",
                secure=self.dashboard.options.secure,
                path="/",
            )

    async def audit(
        self,
        session: AsyncSession,
        action: str,
        target: str | None = None,
        data: Mapping[str, Any] | None = None,
        member_id: int | None = None,
    ) -> None:
        """Record what the viewer did, in the caller's transaction."""
        await AuditLog(session).append(
            at=self.dashboard.now(),
            member_id=member_id
            if member_id is not None
            else (self.viewer.member_id if self.viewer else None),
            action=action,
            target=target,
            data=dict(data or {}),
        )


Page = Callable[[Visit], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def dashboard_of(request: Request) -> Dashboard:
    """The dashboard serving a request."""
    return cast(Dashboard, request.app.state.dashboard)


def page(
    roles: tuple[Role, ...] | None = READERS, *, local_only: bool = False
) -> Callable[[Page], Endpoint]:
    """Wrap a page: sign-in (roles None: anyone), role, local mode and CSRF checks."""

    def wrap(handler: Page) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            dashboard = dashboard_of(request)
            visit = await dashboard.visit(request)
            t = visit.t
            if local_only and not dashboard.local_mode:
                return visit.message(t("error.not_found"), t("error.not_found_text"), 404)
            if roles is not None:
                if visit.viewer is None:
                    if request.method == "GET":
                        response: Response = RedirectResponse("/signin", status_code=303)
                        visit.finish(response)
                        return response
                    return visit.message(t("error.forbidden"), t("signin.how"), 403)
                if visit.viewer.role not in roles:
                    return visit.message(t("error.forbidden"), t("error.forbidden_text"), 403)
            if request.method == "POST":
                visit.form = await request.form()
                if not dashboard.guard.csrf_ok(visit.csrf_base, visit.form.get(CSRF_FIELD)):
                    return visit.message(t("error.forbidden"), t("error.csrf"), 403)
            if _carries_nul(request, visit.form):  # no text column accepts it (PostgreSQL)
                return visit.message(t("error.bad_request"), t("error.nul"), 400)
            numbers = (v for v in request.path_params.values() if isinstance(v, int))
            if any(not 0 <= number <= MAX_ROW_ID for number in numbers):  # no such row
                return visit.message(t("error.not_found"), t("error.not_found_text"), 404)
            return await handler(visit)

        return endpoint

    return wrap


def _carries_nul(request: Request, form: FormData | None) -> bool:
    """Whether any parameter, path part or form field holds a NUL character."""
    given = [*request.query_params.multi_items(), *(form.multi_items() if form else [])]
    texts = [value for _, value in given if isinstance(value, str)]
    texts += [value for value in request.path_params.values() if isinstance(value, str)]
    return any("\x00" in text for text in texts)


class SecurityHeaders:
    """Adds the security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add headers to the response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, sending)
