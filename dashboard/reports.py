"""An incident's file (header, timeline, transcript, alerts) for the page, print and PDF; CSV."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from dashboard.presentation import (
    button_label,
    duration,
    event_detail,
    local_time,
    plain,
    removed_text,
    telegram_html,
)
from dashboard.texts import Translator
from dialogues.protocol import Protocol
from storage.models import EscalationKind, EventKind, Incident, School, TimelineEvent
from storage.repositories import IncidentRegister, Roster

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PDF_REPLACEMENTS = str.maketrans(
    {
        "’": "'",
        "‘": "'",
        "“": '"',
        "”": '"',
        "–": "-",
        "—": "-",
        "…": "...",
        "✅": "[x]",
        "⬜": "[ ]",
        "▸": ">",
        "≥": ">=",
        "·": ".",
        "\u00a0": " ",
        "\u202f": " ",
    }
)


@dataclass(frozen=True)
class Line:
    """A label and its value in the header."""

    label: str
    value: str


@dataclass(frozen=True)
class EventRow:
    """One timeline event as shown."""

    at: str
    kind: str
    label: str
    actor: str
    detail: Markup

    @property
    def text(self) -> str:
        """The detail as plain text (PDF)."""
        return plain(self.detail.striptags())


@dataclass(frozen=True)
class MessageRow:
    """One message of the conversation."""

    at: str
    incoming: bool
    speaker: str
    body: Markup


@dataclass(frozen=True)
class AlertRow:
    """One alert or reminder message: to whom, when, and what became of it."""

    kind: str
    recipient: str
    level: str
    number: int
    created: str
    sent: str
    status: str
    error: str
    acknowledged: str


@dataclass(frozen=True)
class IncidentFile:
    """Everything known about an incident, ready to show."""

    code: str
    drill: bool
    school: str
    status: str
    header: list[Line]
    events: list[EventRow]
    messages: list[MessageRow]
    alerts: list[AlertRow]
    reminders: list[AlertRow]


def status_name(protocol: Protocol, status: str, language: str) -> str:
    """A status in words."""
    key = f"status.{status}"
    return protocol.text(key, language) if key in protocol.texts else status


def outcome_name(protocol: Protocol, outcome: str | None, language: str) -> str:
    """The DPCP's decision in words."""
    if not outcome:
        return ""
    key = f"followup.{outcome}_name"
    return protocol.text(key, language) if key in protocol.texts else outcome


async def incident_file(
    session: AsyncSession,
    register: IncidentRegister,
    incident: Incident,
    t: Translator,
    protocol: Protocol,
    language: str,
    zone: ZoneInfo,
) -> IncidentFile:
    """Assemble an incident's file for a reader who may see it."""
    events = list(await register.timeline(incident))
    chains = await register.escalations(incident)
    ids: set[int] = set() if incident.opened_by is None else {incident.opened_by}
    for event in events:
        if event.member_id:
            ids.add(event.member_id)
        for key in ("to",):
            value = event.data.get(key) if event.data else None
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, list):
                ids.update(v for v in value if isinstance(v, int))
    for chain, deliveries in chains:
        ids.update(d.member_id for d in deliveries if d.member_id is not None)
        if chain.acknowledged_by:
            ids.add(chain.acknowledged_by)
    names = await Roster(session).names(ids)
    school = await session.get(School, incident.school_id)
    school_names = {incident.school_id: school.name if school else incident.school_id}

    def when(moment: datetime | None) -> str:
        return local_time(moment, zone)

    to_911 = (
        duration(incident.police_called_at - incident.opened_at)
        if incident.police_called_at
        else ""
    )
    header = [
        Line(t("field.school"), school_names[incident.school_id]),
        Line(t("field.status"), status_name(protocol, incident.status.value, language)),
        Line(t("field.kind"), t("kind.drill") if incident.drill else t("kind.real")),
        Line(t("field.opened_by"), _person(incident.opened_by, names, t)),
        Line(t("field.opened_at"), when(incident.opened_at)),
        Line(t("field.police_called_at"), when(incident.police_called_at)),
        Line(t("field.to_911"), to_911),
        Line(t("field.event_number"), incident.event_number or ""),
        Line(
            t("field.devices"), "" if incident.device_count is None else str(incident.device_count)
        ),
        Line(t("field.kit_collected_at"), when(incident.kit_collected_at)),
        Line(t("field.outcome"), outcome_name(protocol, incident.outcome, language)),
        Line(t("field.meeting_held_at"), when(incident.meeting_held_at)),
        Line(t("field.victim_met_at"), when(incident.victim_met_at)),
        Line(t("field.closed_at"), when(incident.closed_at)),
        Line(t("field.cancel_reason"), incident.cancel_reason or ""),
        Line(t("field.retention"), _retention(incident, t, when)),
    ]
    rows = [
        EventRow(
            at=local_time(event.at, zone, with_seconds=True),
            kind=event.kind,
            label=t.get(f"event.{event.kind}", event.kind),
            actor=_actor(event, names),
            detail=event_detail(event, t, protocol, language, names, school_names),
        )
        for event in events
    ]
    messages = []
    for event in events:
        if event.kind == EventKind.MESSAGE_IN:
            data = event.data or {}
            if "button" in data:
                body = Markup("<span class='button-pressed'>▸ {}</span>").format(
                    button_label(protocol, str(data["button"]), language, school_names)
                )
            elif removed_text(event):
                body = Markup("<span class='removed'>{}</span>").format(t("retention.removed"))
            else:
                body = Markup("{}").format(str(data.get("text", "")))
            speaker = names.get(event.member_id or 0, t("transcript.professional"))
            messages.append(
                MessageRow(local_time(event.at, zone, with_seconds=True), True, speaker, body)
            )
        elif event.kind == EventKind.MESSAGE_OUT:
            body = (
                Markup("<span class='removed'>{}</span>").format(t("retention.removed"))
                if removed_text(event)
                else telegram_html(str((event.data or {}).get("text", "")))
            )
            messages.append(
                MessageRow(
                    local_time(event.at, zone, with_seconds=True), False, t("transcript.bot"), body
                )
            )
    alerts: list[AlertRow] = []
    reminders: list[AlertRow] = []
    for chain, deliveries in chains:
        acknowledged = ""
        if chain.acknowledged_by and chain.stop_reason == "acknowledged":
            acknowledged = t(
                "alerts.acknowledged_by",
                name=names.get(chain.acknowledged_by, f"#{chain.acknowledged_by}"),
                time=local_time(chain.stopped_at, zone, with_seconds=True),
            )
        kind = chain.reason or chain.kind.value
        for delivery in deliveries:
            row = AlertRow(
                kind=t(f"chain.{chain.kind.value}"),
                recipient=_person(delivery.member_id, names, t),
                level=delivery.level,
                number=delivery.seq,
                created=local_time(delivery.created_at, zone, with_seconds=True),
                sent=local_time(delivery.sent_at, zone, with_seconds=True),
                status=t(f"delivery.{delivery.status}"),
                error=delivery.error or "",
                acknowledged=acknowledged if chain.acknowledged_by == delivery.member_id else "",
            )
            if chain.kind is EscalationKind.OFFICER_ALERT or delivery.level != "professional":
                alerts.append(_with_reason(row, t, kind))
            else:
                reminders.append(row)
    return IncidentFile(
        code=incident.code,
        drill=incident.drill,
        school=school_names[incident.school_id],
        status=status_name(protocol, incident.status.value, language),
        header=header,
        events=rows,
        messages=messages,
        alerts=alerts,
        reminders=reminders,
    )


def _person(member_id: int | None, names: Mapping[int, str], t: Translator) -> str:
    """A member's name; an anonymised incident's people are nobody in particular."""
    if member_id is None:
        return t("retention.anonymised")
    return names.get(member_id, f"#{member_id}")


def _retention(incident: Incident, t: Translator, when: Callable[[datetime], str]) -> str:
    """What the retention purge has removed from the incident, and when."""
    done = []
    if incident.transcript_purged_at is not None:
        done.append(t("retention.transcript_on", time=when(incident.transcript_purged_at)))
    if incident.anonymised_at is not None:
        done.append(t("retention.anonymised_on", time=when(incident.anonymised_at)))
    return "; ".join(done)


def _actor(event: TimelineEvent, names: Mapping[int, str]) -> str:
    """Who did it; for the bot's messages, to whom it spoke."""
    if not event.member_id:
        return ""
    name = names.get(event.member_id, f"#{event.member_id}")
    return f"→ {name}" if event.kind == EventKind.MESSAGE_OUT else name


def _with_reason(row: AlertRow, t: Translator, reason: str) -> AlertRow:
    label = t.get(f"reason.{reason}", reason)
    return AlertRow(**{**row.__dict__, "kind": f"{row.kind} ({label})"})


# ---- CSV --------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "code",
    "drill",
    "school_id",
    "school",
    "status",
    "opened_at",
    "police_called_at",
    "minutes_to_911",
    "event_number",
    "device_count",
    "kit_collected_at",
    "outcome",
    "closed_at",
    "opened_by",
)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def incidents_csv(
    incidents: Sequence[Incident],
    zone: ZoneInfo,
    schools: Mapping[str, str],
    names: Mapping[int, str],
) -> str:
    """Incidents as CSV (UTF-8 with a byte order mark, for spreadsheets; times local, ISO)."""

    def iso(moment: datetime | None) -> str:
        return moment.astimezone(zone).isoformat(timespec="seconds") if moment else ""

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for i in incidents:
        minutes = (
            round((i.police_called_at - i.opened_at).total_seconds() / 60, 1)
            if i.police_called_at
            else ""
        )
        writer.writerow(
            [
                _cell(v)
                for v in (
                    i.code,
                    "yes" if i.drill else "no",
                    i.school_id,
                    schools.get(i.school_id, i.school_id),
                    i.status.value,
                    iso(i.opened_at),
                    iso(i.police_called_at),
                    minutes,
                    i.event_number,
                    i.device_count,
                    iso(i.kit_collected_at),
                    i.outcome,
                    iso(i.closed_at),
                    "" if i.opened_by is None else names.get(i.opened_by, ""),
                )
            ]
        )
    return "\ufeff" + out.getvalue()


# ---- PDF --------------------------------------------------------------------------------------


def latin(text: str) -> str:
    """Text the PDF's built-in fonts can draw: Latin-1, emoji dropped, anything else '?'."""
    kept = []
    for char in text.translate(PDF_REPLACEMENTS):
        if ord(char) < 256:
            kept.append(char)
        elif unicodedata.category(char) not in ("So", "Sk", "Mn", "Cf"):
            kept.append("?")
    return "".join(kept).replace("  ", " ")


def incident_pdf(file: IncidentFile, t: Translator, printed_at: str, now: datetime) -> bytes:
    """The incident's file as a PDF for the police file: header, timeline, alerts."""
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_creation_date(now)
    pdf.set_title(latin(f"{file.code} - {t('report.title')}"))
    pdf.set_author("SEXTO")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    title = f"{t('report.title')} {file.code}"
    if file.drill:
        title += f" ({t('kind.drill')})"
    pdf.cell(0, 9, latin(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(
        0, 5, latin(t("report.printed", time=printed_at)), new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.ln(3)
    pdf.set_font("Helvetica", "", 10)
    with pdf.table(col_widths=(55, 135), first_row_as_headings=False, text_align="LEFT") as table:
        for line in file.header:
            if line.value:
                row = table.row()
                row.cell(latin(line.label))
                row.cell(latin(line.value))
    _section(pdf, t("section.timeline"))
    with pdf.table(col_widths=(38, 42, 30, 80), line_height=5, text_align="LEFT") as table:
        heading = table.row()
        for key in ("column.time", "column.event", "column.actor", "column.detail"):
            heading.cell(latin(t(key)))
        for event in file.events:
            row = table.row()
            for value in (event.at, event.label, event.actor, event.text):
                row.cell(latin(value))
    _section(pdf, t("section.alerts"))
    if not file.alerts:
        pdf.cell(0, 6, latin(t("alerts.none")), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    else:
        with pdf.table(
            col_widths=(34, 30, 14, 34, 34, 44), line_height=5, text_align="LEFT"
        ) as table:
            heading = table.row()
            for key in (
                "column.alert",
                "column.recipient",
                "column.number",
                "column.sent",
                "column.status",
                "column.acknowledged",
            ):
                heading.cell(latin(t(key)))
            for alert in file.alerts:
                row = table.row()
                status = f"{alert.status} {alert.error}".strip()
                for value in (
                    alert.kind,
                    alert.recipient,
                    str(alert.number),
                    alert.sent or alert.created,
                    status,
                    alert.acknowledged,
                ):
                    row.cell(latin(value))
    return bytes(pdf.output())


def _section(pdf: FPDF, title: str) -> None:
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, latin(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 9)
