"""Incidents (list, one incident, printable report, PDF, CSV) and statistics."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response
from starlette.routing import Route

from dashboard.access import Viewer
from dashboard.charts import bar_chart
from dashboard.presentation import duration
from dashboard.reports import incident_file, incident_pdf, incidents_csv, outcome_name, status_name
from dashboard.statistics import compute, histogram
from dashboard.web import Visit, page
from storage.models import Incident, IncidentStatus, School
from storage.repositories import SORTS, IncidentFilter, Roster

PER_PAGE = 25
MAX_PAGE = 100_000  # beyond any list; a larger number would overflow the database's OFFSET
KINDS = ("all", "real", "drill")


@dataclass(frozen=True)
class Query:
    """The list's filters as the viewer gave them (text, echoed back into the form)."""

    school: str = ""
    status: str = ""
    start: str = ""
    end: str = ""
    kind: str = "all"
    sort: str = "opened_desc"
    page: int = 1
    ignored: tuple[str, ...] = ()  # filters given with a value that cannot apply, by name

    def params(self, **changes: object) -> str:
        """The query string for these filters with some changed."""
        values = {
            "school": self.school,
            "status": self.status,
            "from": self.start,
            "to": self.end,
            "kind": self.kind,
            "sort": self.sort,
            "page": self.page,
        }
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def read_query(visit: Visit, schools: Collection[str]) -> tuple[Query, IncidentFilter]:
    """The filters of the request, validated; dates are days in the display zone.

    A filter whose value cannot apply (a school the viewer cannot see, a date that is no date)
    is left out and named in ``Query.ignored``, so that the page says so rather than showing a
    list the viewer would take for filtered.
    """
    params = visit.request.query_params
    ignored: list[str] = []

    def given(name: str, allowed: Collection[str], default: str = "") -> str:
        value = params.get(name, "")
        if value in allowed:
            return value
        if value:
            ignored.append(name)
        return default

    def day(name: str) -> date | None:
        text = params.get(name, "")
        value = _day(text)
        if text and value is None:
            ignored.append(name)
        return value

    school = given("school", schools)
    status = given("status", {s.value for s in IncidentStatus})
    start, end = day("from"), day("to")
    kind = given("kind", KINDS, "all")
    sort = given("sort", SORTS, "opened_desc")
    try:
        number = min(max(int(params.get("page", "1")), 1), MAX_PAGE)
    except ValueError:
        number = 1
    query = Query(
        school=school,
        status=status,
        start=start.isoformat() if start else "",
        end=end.isoformat() if end else "",
        kind=kind,
        sort=sort,
        page=number,
        ignored=tuple(ignored),
    )
    zone = visit.dashboard.zone

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)

    wanted = IncidentFilter(
        school_id=query.school or None,
        status=IncidentStatus(query.status) if query.status else None,
        opened_from=midnight(start) if start else None,
        opened_before=midnight(end + timedelta(days=1)) if end else None,
        drill=None if query.kind == "all" else query.kind == "drill",
    )
    return query, wanted


def filter_names(visit: Visit, query: Query) -> str:
    """The ignored filters of a query, as the form labels them."""
    return ", ".join(visit.t(f"filter.{name}") for name in query.ignored)


async def school_names(session: AsyncSession, me: Viewer) -> tuple[dict[str, str], dict[str, str]]:
    """Every school's name by id, and those of the schools the viewer may see."""
    rows = await session.execute(select(School.id, School.name).order_by(School.name))
    names = {school_id: name for school_id, name in rows}
    visible = {k: v for k, v in names.items() if me.schools is None or k in me.schools}
    return names, visible


@page()
async def incidents(visit: Visit) -> Response:
    """The incidents the viewer may see, filtered, sorted and by pages."""
    dashboard = visit.dashboard
    me = visit.me
    async with dashboard.sessions() as session, session.begin():
        names, visible = await school_names(session, me)
        query, wanted = read_query(visit, visible)
        register = me.register(session)
        rows, total = await register.search(
            wanted, query.sort, (query.page - 1) * PER_PAGE, PER_PAGE
        )
        counts = await register.status_counts(wanted)
        openers = await Roster(session).names(i.opened_by for i in rows if i.opened_by)
        await visit.audit(session, "view_incidents", data={"query": query.params()})
    pages = max(math.ceil(total / PER_PAGE), 1)
    language = visit.language
    protocol = dashboard.protocol
    return visit.render(
        "incidents.html",
        query=query,
        ignored=filter_names(visit, query),
        rows=[
            {
                "code": i.code,
                "drill": i.drill,
                "school": names.get(i.school_id, i.school_id),
                "status": status_name(protocol, i.status.value, language),
                "status_code": i.status.value,
                "opened": dashboard.local(i.opened_at),
                "opened_by": openers.get(i.opened_by, "") if i.opened_by else "",
                "to_911": duration(i.police_called_at - i.opened_at) if i.police_called_at else "",
                "outcome": outcome_name(protocol, i.outcome, language),
            }
            for i in rows
        ],
        total=total,
        pages=pages,
        counts=[
            (s.value, status_name(protocol, s.value, language), counts.get(s, 0))
            for s in IncidentStatus
        ],
        schools=visible,
        statuses=[(s.value, status_name(protocol, s.value, language)) for s in IncidentStatus],
        kinds=KINDS,
        sorts=list(SORTS),
        scope=None if me.schools is None else sorted(visible.values()),
    )


async def _visible_incident(visit: Visit, session: AsyncSession) -> Incident | None:
    code = str(visit.request.path_params["code"])[:20]
    incident = await visit.me.register(session).by_code(code)
    if incident is None:
        await visit.audit(session, "view_denied", target=code)
    return incident


async def _file_page(visit: Visit, template: str, action: str) -> Response:
    dashboard = visit.dashboard
    t = visit.t
    async with dashboard.sessions() as session, session.begin():
        incident = await _visible_incident(visit, session)
        if incident is None:
            file = None
        else:
            file = await incident_file(
                session,
                visit.me.register(session),
                incident,
                t,
                dashboard.protocol,
                visit.language,
                dashboard.zone,
            )
            await visit.audit(session, action, target=incident.code)
    if file is None:
        return visit.message(t("error.not_found"), t("error.not_found_text"), 404)
    return visit.render(template, file=file, printed=dashboard.local(dashboard.now()))


@page()
async def incident(visit: Visit) -> Response:
    """One incident: header, timeline, conversation, alerts and reminders."""
    return await _file_page(visit, "incident.html", "view_incident")


@page()
async def report(visit: Visit) -> Response:
    """One incident as a page to print."""
    return await _file_page(visit, "report.html", "export_report")


@page()
async def report_pdf(visit: Visit) -> Response:
    """One incident as a PDF for the police file."""
    dashboard = visit.dashboard
    t = visit.t
    async with dashboard.sessions() as session, session.begin():
        incident = await _visible_incident(visit, session)
        if incident is None:
            return visit.message(t("error.not_found"), t("error.not_found_text"), 404)
        file = await incident_file(
            session,
            visit.me.register(session),
            incident,
            t,
            dashboard.protocol,
            visit.language,
            dashboard.zone,
        )
        await visit.audit(session, "export_pdf", target=incident.code)
    now = dashboard.now()
    content = incident_pdf(file, t, dashboard.local(now), now)
    return Response(
        content,
        media_type="application/pdf",
        headers={"content-disposition": f'attachment; filename="{file.code}.pdf"'},
    )


@page()
async def export_csv(visit: Visit) -> Response:
    """The filtered incidents as CSV."""
    dashboard = visit.dashboard
    me = visit.me
    async with dashboard.sessions() as session, session.begin():
        names, visible = await school_names(session, me)
        query, wanted = read_query(visit, visible)
        if query.ignored:
            return visit.message(
                visit.t("error.bad_request"),
                visit.t("filter.invalid", filters=filter_names(visit, query)),
                400,
            )
        rows = await me.register(session).matching(wanted, query.sort)
        openers = await Roster(session).names(i.opened_by for i in rows if i.opened_by)
        await visit.audit(
            session, "export_csv", data={"query": query.params(page=""), "count": len(rows)}
        )
    stamp = dashboard.now().astimezone(dashboard.zone).strftime("%Y%m%d-%H%M")
    return Response(
        incidents_csv(rows, dashboard.zone, names, openers),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="sexto-incidents-{stamp}.csv"'},
    )


@page()
async def statistics(visit: Visit) -> Response:
    """Delays, counts per school and month, and outcomes, as SVG charts."""
    dashboard = visit.dashboard
    t = visit.t
    me = visit.me
    async with dashboard.sessions() as session, session.begin():
        names, visible = await school_names(session, me)
        query, wanted = read_query(visit, visible)
        if "kind" not in visit.request.query_params or "kind" in query.ignored:
            query = replace(query, kind="real")
            wanted = replace(wanted, drill=False)
        register = me.register(session)
        rows = await register.matching(wanted)
        acks = await register.acknowledgements(i.id for i in rows)
        await visit.audit(session, "view_statistics", data={"query": query.params(page="")})
    figures = compute(rows, acks, dashboard.zone, names)

    def count(value: float) -> str:
        return f"{value:g}"

    charts = {
        "per_school": bar_chart(figures.per_school, t("stats.per_school"), count),
        "per_month": bar_chart(figures.per_month, t("stats.per_month"), count),
        "outcomes": bar_chart(
            [(t(f"outcome.{k}"), v) for k, v in figures.outcomes.items()],
            t("stats.outcomes"),
            count,
        ),
        "delays_911": bar_chart(
            histogram(figures.delays_911) if figures.delays_911 else [],
            t("stats.delays_911"),
            count,
        ),
    }
    return visit.render(
        "statistics.html",
        query=query,
        ignored=filter_names(visit, query),
        figures=figures,
        charts=charts,
        shown=duration,
        schools=visible,
        kinds=KINDS,
    )


ROUTES = [
    Route("/incidents", incidents),
    Route("/incidents.csv", export_csv),
    Route("/incidents/{code}", incident),
    Route("/incidents/{code}/report", report),
    Route("/incidents/{code}/report.pdf", report_pdf),
    Route("/statistics", statistics),
]
