"""Hostile text everywhere it can be shown, and SQL-looking input everywhere it can be given.

XSS: a payload that closes an attribute and opens a script goes into every field a page can
show (member and school names, typed messages, a cancel reason, an event number, the member
who used a code, the sign-in token, every text field of every form); no page may carry it
raw, and each named field must be shown, escaped. SQL: every query parameter and form field
the dashboard reads, and every path parameter, gets SQL-looking text, numbers too large for
any column and a NUL byte: no server error, and every table is still there, whole. In Telegram,
where the bot's messages are HTML, names with tags stay text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import func, inspect, select, update
from starlette.applications import Starlette

from bot.runtime import Runtime
from bot.settings import Config
from dialogues.events import CancelRequested
from storage.models import Incident, Member, Role, School, TimelineEvent
from storage.repositories import Enrollment, Incidents
from tests.dashboard.conftest import local_dashboard, sign_in_locally
from tests.dashboard.scenario import BASE, World, csrf_of, sign_in
from tests.e2e.conftest import Bot
from tests.security.routes import endpoints, fill, form_token, parameters, routes
from tests.support.clock import FrozenClock
from tests.support.transcript import Transcript

ROOT = Path(__file__).resolve().parents[2]
RAW = "<script>x("  # what a payload looks like when it was not escaped
SQL = ("'; DROP TABLE incidents; --", "1 OR 1=1", "9" * 30, "nul\x00byte")


def payload(tag: str) -> str:
    """Hostile text that leaves an attribute and opens a script if shown unescaped."""
    return f'"\'><script>x("{tag}")</script>'


@dataclass
class Form:
    """A form of a page: where it goes and its fields (name, type, a value to keep)."""

    action: str
    method: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)


class Forms(HTMLParser):
    """Every form of a page, with its inputs, text areas and selects (first option)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(found.get("action", ""), found.get("method", "get").upper()))
        elif not self.forms:
            return
        elif tag in ("input", "textarea") and found.get("name"):
            kind = found.get("type", "text") if tag == "input" else "textarea"
            self.forms[-1].fields.append((found["name"], kind, found.get("value", "")))
        elif tag == "select" and found.get("name"):
            self._select = found["name"]
        elif tag == "option" and self._select is not None:
            self.forms[-1].fields.append((self._select, "select", found.get("value", "")))
            self._select = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def forms_of(page: str) -> list[Form]:
    parser = Forms()
    parser.feed(page)
    return parser.forms


def names_in_source() -> tuple[set[str], set[str]]:
    """The query parameters, and the form fields, that the dashboard's code reads."""
    query: set[str] = set()
    form: set[str] = set()
    for path in (ROOT / "dashboard").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        query |= set(re.findall(r"""query_params\.get\(\s*"([a-z_]+)\"""", source))
        query |= set(re.findall(r"""params\.get\(\s*"([a-z_]+)\"""", source))
        form |= set(re.findall(r"""\.field\(\s*"([a-z_]+)\"""", source))
        form |= set(re.findall(r"""form\.get\(\s*"([a-z_]+)\"""", source))
    return query, form


async def crawl(client: httpx.AsyncClient, urls: Iterable[str]) -> dict[str, str]:
    """The HTML of each page (only pages: exports and files are not HTML)."""
    pages = {}
    for url in urls:
        response = await client.get(url)
        assert response.status_code < 500, (url, response.status_code)
        if response.headers.get("content-type", "").startswith("text/html"):
            pages[url] = response.text
    return pages


def unescaped(pages: dict[str, str]) -> list[str]:
    return [url for url, page in pages.items() if RAW in page]


def shown_somewhere(pages: dict[str, str], tag: str) -> bool:
    return any(payload(tag) in html.unescape(page) for page in pages.values())


async def hostile_world(runtime: Runtime, world: World, clock: FrozenClock) -> list[str]:
    """Put a payload in every field a person can fill in; returns the tags to look for."""
    async with runtime.sessions() as session, session.begin():
        for role in ("coordinator", "admin", "officer_nord", "officer_west", "professional"):
            member: Member = getattr(world, role)
            await session.execute(
                update(Member)
                .where(Member.id == member.id)
                .values(display_name=payload(f"name-{role}"))
            )
        await session.execute(
            update(School)
            .where(School.id == "nord")
            .values(
                name=payload("school-name"),
                board=payload("school-board"),
                station=payload("school-station"),
                address=payload("school-address"),
            )
        )
        west = await Incidents(session).by_code(world.west)
        assert west is not None
        # The guide takes only number-like event numbers: this one is put straight in storage.
        await Incidents(session).update(west, clock.now(), event_number=payload("event")[:64])
        code, _ = await Enrollment(session).create_code(
            world.officer_nord.role,
            "nord",
            clock.now(),
            runtime.settings.config.enrollment.code_ttl,
        )
    await runtime.guide.enroll(code, 777001, payload("code-user"), "en")
    await Transcript(runtime.guide, world.professional_west.id).say(payload("typed"))
    drill = Transcript(runtime.guide, world.professional.id)
    await drill.send(CancelRequested())
    await drill.say(payload("cancel"))
    async with runtime.sessions() as session:
        cancelled = await Incidents(session).by_code(world.drill)
        assert cancelled is not None
        assert cancelled.cancel_reason == payload("cancel")
    return [
        "name-coordinator",
        "name-admin",
        "name-officer_nord",
        "name-professional",
        "school-name",
        "school-board",
        "school-station",
        "event",
        "code-user",
        "typed",
        "cancel",
        "token",
    ]


def page_urls(app: Starlette, values: dict[str, str], world: World) -> list[str]:
    """Every page a GET reaches, for each incident, plus addresses that echo what they get."""
    urls = []
    for endpoint in endpoints(app, values):
        if endpoint.method != "GET" or endpoint.path.startswith(("/drill", "/static")):
            continue
        if "{code}" in endpoint.path and endpoint.path.startswith("/incidents"):
            urls += [
                endpoint.path.replace("{code}", c) for c in (world.nord, world.west, world.drill)
            ]
        else:
            urls.append(endpoint.url)
    return [
        *urls,
        f"/login?token={quote(payload('token'))}",
        f"/incidents?school={quote(payload('filter'))}&sort={quote(payload('sort'))}",
        f"/statistics?school={quote(payload('filter'))}",
        f"/incidents/{quote(payload('path'))}",
        "/audit",  # last: it shows what the requests above put in the log
    ]


async def test_every_field_shown_is_escaped(
    app: Starlette, runtime: Runtime, world: World, clock: FrozenClock
) -> None:
    tags = await hostile_world(runtime, world, clock)
    values = await parameters(runtime, world)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as coordinator:
        assert (await sign_in(coordinator, runtime, world.coordinator.id)).status_code == 303
        pages = await crawl(coordinator, page_urls(app, values, world))
        # Every form with text to type gets the payload in each of its text fields.
        submitted = 0
        for form in {f.action: f for page in pages.values() for f in forms_of(page)}.values():
            typed = [kind for _, kind, _ in form.fields if kind in ("text", "textarea")]
            if form.method != "POST" or form.action == "/login" or not typed:
                continue
            data: dict[str, Any] = {}
            for name, kind, value in form.fields:
                if kind in ("hidden", "select", "radio", "checkbox"):
                    data.setdefault(name, value)
                elif kind == "date":
                    data[name] = "2026-11-01"
                elif kind == "number":
                    data[name] = "1"
                else:
                    data[name] = payload(f"form{form.action}:{name}")
            response = await coordinator.post(form.action, data=data)
            assert response.status_code < 500, (form.action, response.status_code)
            submitted += 1
        assert submitted >= 1, "the pages' forms were not found"
        pages |= await crawl(coordinator, page_urls(app, values, world))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as officer:
        assert (await sign_in(officer, runtime, world.officer_nord.id)).status_code == 303
        officer_pages = await crawl(officer, page_urls(app, values, world))
    assert unescaped(pages) == []
    assert unescaped(officer_pages) == []
    missing = [tag for tag in tags if not shown_somewhere(pages, tag)]
    assert missing == [], "these fields were shown nowhere: the test would prove nothing"
    assert shown_somewhere(officer_pages, "name-professional")


async def test_the_drill_simulator_escapes_what_the_trainer_types(
    config: Config, database_url: str, clock: FrozenClock
) -> None:
    async with local_dashboard(config, database_url, clock) as (runtime, app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as trainer:
            await sign_in_locally(trainer, runtime)
            token = csrf_of((await trainer.get("/drill")).text)
            await trainer.post("/drill/start", data={"csrf": token})
            await trainer.post("/drill/say", data={"csrf": token, "text": payload("drill")})
            page = (await trainer.get("/drill")).text
    assert RAW not in page
    assert payload("drill") in html.unescape(page)


async def table_census(runtime: Runtime) -> tuple[set[str], int, int, int]:
    async with runtime.engine.connect() as connection:
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    async with runtime.sessions() as session:
        incidents = await session.scalar(select(func.count()).select_from(Incident))
        members = await session.scalar(select(func.count()).select_from(Member))
        events = await session.scalar(select(func.count()).select_from(TimelineEvent))
    return tables, incidents or 0, members or 0, events or 0


async def test_sql_looking_input_everywhere_changes_nothing(
    app: Starlette, runtime: Runtime, world: World
) -> None:
    values = await parameters(runtime, world)
    every = endpoints(app, values)
    tables, incidents, members, _ = await table_census(runtime)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # 500s, to list them
    failures: list[str] = []
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        assert (await sign_in(client, runtime, world.coordinator.id)).status_code == 303
        token = await form_token(client)
        pages = await crawl(client, [e.url for e in every if e.method == "GET"])
        query, posted = names_in_source()
        fields: dict[str, set[str]] = {}  # each form's own fields, by where it posts
        for form in (form for page in pages.values() for form in forms_of(page)):
            names = {name for name, *_ in form.fields} - {"csrf"}
            (query if form.method == "GET" else posted).update(names)
            fields.setdefault(form.action, set()).update(names)
        posted.discard("csrf")
        assert {"school", "status", "from", "to", "kind", "sort", "page", "token"} <= query
        assert {"token", "role", "school", "officer", "backup", "active", "text"} <= posted

        async def check(method: str, url: str, data: dict[str, str]) -> None:
            if method == "GET":
                response = await client.get(url, params=data)
            else:
                response = await client.post(url, data={**data, "csrf": token})
            if response.status_code >= 500:
                failures.append(f"{method} {url} {data}: {response.status_code}")

        for endpoint in every:
            if endpoint.path in ("/logout", "/static") or endpoint.path.startswith("/drill"):
                continue  # signing out would end the session; the rest is not served here
            names = query if endpoint.method == "GET" else posted
            for text in SQL:  # every name the dashboard reads, at once, on every route
                await check(endpoint.method, endpoint.url, dict.fromkeys(names, text))
                if "{" in endpoint.path:
                    hostile = fill(endpoint.path, {k: quote(text, safe="") for k in values})
                    await check(endpoint.method, hostile, {})
            # And one by one (the others absent), those of the route's own forms.
            own = sorted(fields.get(endpoint.url, names) if endpoint.method == "POST" else query)
            for index, name in enumerate(own):
                await check(endpoint.method, endpoint.url, {name: SQL[index % len(SQL)]})
    assert failures == [], "\n".join(failures[:40])
    after, incidents_after, members_after, _ = await table_census(runtime)
    assert after == tables
    assert (incidents_after, members_after) == (incidents, members)


async def test_names_with_markup_reach_telegram_as_plain_text(telegram: Bot) -> None:
    """Bot messages are Telegram HTML: a name with tags must stay text (no link, no bold)."""
    server = telegram.server
    officer_name = '<a href="https://evil.example/">Officer</a> & co'
    professional_name = "<b>Julie</b> <i>"
    officer = await telegram.enrolled(Role.OFFICER, 700, officer_name)
    professional = await telegram.enrolled(Role.PROFESSIONAL, 500, professional_name)
    server.send_text(professional, "/incident")
    mode = await server.wait_for_message(500, lambda m: "reply_markup" in m)
    server.press_button(professional, mode, text="Real situation")
    told = await server.wait_for_message(500, lambda m: "community relations officer" in m["text"])
    alert = await server.wait_for_message(700, lambda m: "SX-" in m["text"])
    assert officer_name in told["text"]
    server.press_button(officer, alert, text="Acknowledge")
    aware = await server.wait_for_message(500, lambda m: "is aware" in m["text"])
    assert officer_name in aware["text"]
    for message in [*server.sent_messages(500), *server.sent_messages(700)]:
        for entity in message.get("entities", []):
            units = message["text"].encode("utf-16-le")  # offsets count UTF-16 code units
            start, end = 2 * entity["offset"], 2 * (entity["offset"] + entity["length"])
            marked = units[start:end].decode("utf-16-le")
            assert entity["type"] != "text_link", message["text"]
            assert "Julie" not in marked, (entity, message["text"])
            assert "Officer" not in marked, (entity, message["text"])
    welcome = server.sent_messages(500)[0]["text"]
    assert welcome.startswith(f"Welcome, {professional_name}.")


async def test_the_drill_simulator_takes_sql_looking_input_in_its_stride(
    config: Config, database_url: str, clock: FrozenClock
) -> None:
    async with local_dashboard(config, database_url, clock) as (runtime, app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        failures = []
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as trainer:
            await sign_in_locally(trainer, runtime)
            token = csrf_of((await trainer.get("/drill")).text)
            await trainer.post("/drill/start", data={"csrf": token})
            _, posted = names_in_source()
            for path, method in routes(app):
                if not path.startswith("/drill") or method != "POST":
                    continue
                for text in (*SQL, "ack:" + "9" * 30):
                    for data in (dict.fromkeys(posted, text), {"data": text}):
                        response = await trainer.post(path, data={**data, "csrf": token})
                        if response.status_code >= 500:
                            failures.append(f"{path} {data}: {response.status_code}")
            assert (await trainer.get("/drill")).status_code == 200
        assert failures == [], "\n".join(failures[:20])
