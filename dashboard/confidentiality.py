"""The register of confidentiality incidents (Québec Law 25) that coordinators keep.

Each entry holds what the law asks of the register: the circumstances, the personal
information concerned, when the incident occurred and when it was discovered, how many people
it concerns, the assessment of the risk of serious injury, whether and when the Commission
d'accès à l'information and the people concerned were notified, and the measures taken.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dashboard.portability import utc_iso
from dashboard.reports import FORMULA_STARTS
from dashboard.web import COORDINATORS, Visit, page
from storage.models import ConfidentialityIncident
from storage.repositories import REGISTER_FIELDS, Roster

EXPORT_VERSION = 1
TEXT_LIMIT = 5000
MAX_PEOPLE = 1_000_000_000
TEXTS = (
    "description",
    "personal_information",
    "risk_assessment",
    "notification_details",
    "measures",
)
REQUIRED_TEXTS = ("description", "personal_information", "risk_assessment", "measures")
DATES = (
    "occurred_on",
    "occurred_until",
    "discovered_on",
    "commission_notified_on",
    "people_notified_on",
)
REQUIRED_DATES = ("occurred_on", "discovered_on")
CHOICES = ("yes", "no")


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def validate(form: Mapping[str, str], today: date) -> tuple[dict[str, Any], dict[str, str]]:
    """An entry's values from its form, and the error (a text key) of each wrong field.

    ``today`` is the day in the display zone: no date of the register may be after it.
    """
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name in TEXTS:
        text = form.get(name, "").strip()
        if not text and name in REQUIRED_TEXTS:
            errors[name] = "register.error.required"
        elif len(text) > TEXT_LIMIT:
            errors[name] = "register.error.too_long"
        values[name] = text or None
    days: dict[str, date | None] = {}
    for name in DATES:
        text = form.get(name, "").strip()
        day = _date(text) if text else None
        if not text and name in REQUIRED_DATES:
            errors[name] = "register.error.required"
        elif text and day is None:
            errors[name] = "register.error.date"
        elif day is not None and day > today:
            errors[name] = "register.error.future"
        days[name] = day
        values[name] = day
    occurred, until, discovered = (
        days["occurred_on"],
        days["occurred_until"],
        days["discovered_on"],
    )
    if occurred and discovered and occurred > discovered and "occurred_on" not in errors:
        errors["occurred_on"] = "register.error.after_discovery"
    if occurred and until and until < occurred and "occurred_until" not in errors:
        errors["occurred_until"] = "register.error.period"
    for name in ("commission_notified_on", "people_notified_on"):
        notified = days[name]
        if notified and discovered and notified < discovered and name not in errors:
            errors[name] = "register.error.before_discovery"
    count = form.get("people_count", "").strip()
    if not count:
        errors["people_count"] = "register.error.required"
    elif not count.isdecimal() or int(count) > MAX_PEOPLE:
        errors["people_count"] = "register.error.number"
    else:
        values["people_count"] = int(count)
    values["people_count_estimated"] = form.get("people_count_estimated", "") == "1"
    risk = form.get("serious_injury_risk", "")
    if risk not in CHOICES:
        errors["serious_injury_risk"] = "register.error.required"
    else:
        values["serious_injury_risk"] = risk == "yes"
    return values, errors


def form_of(row: ConfidentialityIncident) -> dict[str, str]:
    """A stored entry as the form shows it."""
    form: dict[str, str] = {}
    for name in TEXTS:
        form[name] = getattr(row, name) or ""
    for name in DATES:
        day = getattr(row, name)
        form[name] = day.isoformat() if day else ""
    form["people_count"] = str(row.people_count)
    form["people_count_estimated"] = "1" if row.people_count_estimated else ""
    form["serious_injury_risk"] = "yes" if row.serious_injury_risk else "no"
    return form


def notice_pending(row: ConfidentialityIncident) -> bool:
    """A risk of serious injury with the Commission or the people concerned not notified yet."""
    return row.serious_injury_risk and (
        row.commission_notified_on is None or row.people_notified_on is None
    )


def _posted(visit: Visit) -> dict[str, str]:
    return {name: visit.field(name) for name in REGISTER_FIELDS}


def _today(visit: Visit) -> date:
    dashboard = visit.dashboard
    return dashboard.now().astimezone(dashboard.zone).date()


def _entry_id(visit: Visit) -> int:
    return int(visit.request.path_params["entry_id"])


def _form_page(
    visit: Visit,
    form: Mapping[str, str],
    errors: Mapping[str, str],
    entry: ConfidentialityIncident | None,
    status: int = 200,
) -> Response:
    return visit.render(
        "register_form.html",
        status=status,
        form=form,
        errors=errors,
        entry=entry,
        today=_today(visit).isoformat(),
    )


@page(COORDINATORS)
async def register(visit: Visit) -> Response:
    """Every entry, the most recently discovered first."""
    dashboard = visit.dashboard
    async with dashboard.sessions() as session, session.begin():
        rows = await visit.me.confidentiality(session).newest_first()
        await visit.audit(session, "view_confidentiality", data={"count": len(rows)})
    return visit.render("register.html", entries=rows, pending=notice_pending, shorten=_shorten)


def _shorten(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@page(COORDINATORS)
async def new_entry(visit: Visit) -> Response:
    """An empty entry to fill in."""
    return _form_page(visit, {}, {}, None)


@page(COORDINATORS)
async def create_entry(visit: Visit) -> Response:
    """Record a new entry, or show the form again with what is wrong."""
    dashboard = visit.dashboard
    form = _posted(visit)
    values, errors = validate(form, _today(visit))
    if errors:
        return _form_page(visit, form, errors, None, status=400)
    async with dashboard.sessions() as session, session.begin():
        row = await visit.me.confidentiality(session).record(
            values, visit.me.member_id, dashboard.now()
        )
        await visit.audit(session, "confidentiality_recorded", target=str(row.id))
    return RedirectResponse(f"/confidentiality/{row.id}?saved=1", status_code=303)


@page(COORDINATORS)
async def entry(visit: Visit) -> Response:
    """One entry, with who recorded and last changed it."""
    dashboard = visit.dashboard
    t = visit.t
    entry_id = _entry_id(visit)
    async with dashboard.sessions() as session, session.begin():
        row = await visit.me.confidentiality(session).get(entry_id)
        if row is None:
            return visit.message(t("error.not_found"), t("error.not_found_text"), 404)
        names = await Roster(session).names(
            i for i in (row.recorded_by, row.updated_by) if i is not None
        )
        await visit.audit(session, "view_confidentiality_entry", target=str(row.id))
    params = visit.request.query_params
    notice = (
        t("register.saved")
        if "saved" in params
        else t("register.unchanged")
        if "unchanged" in params
        else ""
    )
    return visit.render(
        "register_entry.html",
        entry=row,
        notice=notice,
        pending=notice_pending(row),
        recorded=t(
            "register.recorded",
            name=names.get(row.recorded_by or 0, "?"),
            time=dashboard.local(row.recorded_at),
        ),
        updated=t(
            "register.updated",
            name=names.get(row.updated_by or 0, "?"),
            time=dashboard.local(row.updated_at),
        )
        if row.updated_at != row.recorded_at
        else "",
    )


@page(COORDINATORS)
async def edit_entry(visit: Visit) -> Response:
    """An entry's form, filled in."""
    dashboard = visit.dashboard
    t = visit.t
    async with dashboard.sessions() as session, session.begin():
        row = await visit.me.confidentiality(session).get(_entry_id(visit))
    if row is None:
        return visit.message(t("error.not_found"), t("error.not_found_text"), 404)
    return _form_page(visit, form_of(row), {}, row)


@page(COORDINATORS)
async def update_entry(visit: Visit) -> Response:
    """Change an entry; each change is audited with the names of the fields changed."""
    dashboard = visit.dashboard
    t = visit.t
    form = _posted(visit)
    values, errors = validate(form, _today(visit))
    async with dashboard.sessions() as session, session.begin():
        entries = visit.me.confidentiality(session)
        row = await entries.get(_entry_id(visit))
        if row is None:
            return visit.message(t("error.not_found"), t("error.not_found_text"), 404)
        if errors:
            return _form_page(visit, form, errors, row, status=400)
        changed = await entries.amend(row, values, visit.me.member_id, dashboard.now())
        if changed:
            await visit.audit(
                session, "confidentiality_amended", target=str(row.id), data={"fields": changed}
            )
    outcome = "saved" if changed else "unchanged"
    return RedirectResponse(f"/confidentiality/{row.id}?{outcome}=1", status_code=303)


# ---- exports ------------------------------------------------------------------------------

CSV_COLUMNS = (
    "id",
    *REGISTER_FIELDS,
    "recorded_by",
    "recorded_at",
    "updated_by",
    "updated_at",
)


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _values(row: ConfidentialityIncident) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(row, name) for name in REGISTER_FIELDS}
    for name in DATES:
        values[name] = values[name].isoformat() if values[name] else None
    return values


def register_csv(
    rows: Sequence[ConfidentialityIncident], names: Mapping[int, str], zone: ZoneInfo
) -> str:
    """The register as CSV (UTF-8 with a byte order mark; times local, ISO 8601)."""

    def local(moment: datetime) -> str:
        return moment.astimezone(zone).isoformat(timespec="seconds")

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = _values(row)
        writer.writerow(
            [
                _cell(v)
                for v in (
                    row.id,
                    *(values[name] for name in REGISTER_FIELDS),
                    names.get(row.recorded_by or 0, ""),
                    local(row.recorded_at),
                    names.get(row.updated_by or 0, ""),
                    local(row.updated_at),
                )
            ]
        )
    return "\ufeff" + out.getvalue()


def register_json(
    rows: Sequence[ConfidentialityIncident], names: Mapping[int, str], now: datetime
) -> dict[str, Any]:
    """The register as a JSON document (dates as days, times in UTC)."""

    def who(member_id: int | None) -> dict[str, Any] | None:
        if member_id is None:
            return None
        return {"id": member_id, "name": names.get(member_id)}

    return {
        "version": EXPORT_VERSION,
        "generated_at": utc_iso(now),
        "entries": [
            {
                "id": row.id,
                **_values(row),
                "recorded_by": who(row.recorded_by),
                "recorded_at": utc_iso(row.recorded_at),
                "updated_by": who(row.updated_by),
                "updated_at": utc_iso(row.updated_at),
            }
            for row in rows
        ],
    }


async def _export(visit: Visit, kind: str) -> Response:
    dashboard = visit.dashboard
    now = dashboard.now()
    async with dashboard.sessions() as session, session.begin():
        rows = await visit.me.confidentiality(session).newest_first()
        ids = [i for row in rows for i in (row.recorded_by, row.updated_by) if i is not None]
        names = await Roster(session).names(ids)
        await visit.audit(
            session, "export_confidentiality", data={"format": kind, "count": len(rows)}
        )
    stamp = now.astimezone(dashboard.zone).strftime("%Y%m%d-%H%M")
    filename = f"sexto-confidentiality-register-{stamp}.{kind}"
    headers = {"content-disposition": f'attachment; filename="{filename}"'}
    if kind == "csv":
        return Response(
            register_csv(rows, names, dashboard.zone),
            media_type="text/csv; charset=utf-8",
            headers=headers,
        )
    body = json.dumps(register_json(rows, names, now), ensure_ascii=False, indent=2) + "\n"
    return Response(
        body.encode("utf-8"), media_type="application/json; charset=utf-8", headers=headers
    )


@page(COORDINATORS)
async def export_csv(visit: Visit) -> Response:
    """The register as CSV."""
    return await _export(visit, "csv")


@page(COORDINATORS)
async def export_json(visit: Visit) -> Response:
    """The register as JSON."""
    return await _export(visit, "json")


ROUTES = [
    Route("/confidentiality", register, methods=["GET"]),
    Route("/confidentiality", create_entry, methods=["POST"]),
    Route("/confidentiality.csv", export_csv),
    Route("/confidentiality.json", export_json),
    Route("/confidentiality/new", new_entry),
    Route("/confidentiality/{entry_id:int}", entry, methods=["GET"]),
    Route("/confidentiality/{entry_id:int}", update_entry, methods=["POST"]),
    Route("/confidentiality/{entry_id:int}/edit", edit_entry),
]
