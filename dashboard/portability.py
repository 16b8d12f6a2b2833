"""A member's data export (portability, Law 25): what the program holds about them, as JSON.

Other members appear in it by their role only, never by name or id, and what other people
typed or were told is withheld: it is their data, not the member's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response
from starlette.routing import Route

from dashboard.presentation import button_label
from dashboard.web import COORDINATORS, Visit, page
from dialogues.protocol import Protocol
from storage.models import EventKind, Incident, Member, School, TimelineEvent
from storage.repositories import Assignments, MemberRecords, Roster

EXPORT_VERSION = 1
SELF = "self"
# Timeline data that carries what someone typed or was told, by event kind (None: any kind).
FREE_TEXT: Mapping[str | None, tuple[str, ...]] = {
    None: ("text",),
    EventKind.INCIDENT_CANCELLED: ("reason",),
}


def utc_iso(moment: datetime | None) -> str | None:
    """A stored time as ISO 8601 in UTC (2026-11-21T14:30:00Z); None stays None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Redactor:
    """Shows other members by their role: in people fields and inside free text."""

    def __init__(self, subject: Member, everyone: Iterable[Member]) -> None:
        self.subject_id = subject.id
        self.roles: dict[int, str] = {}
        names: dict[str, str | None] = {}
        for member in everyone:
            self.roles[member.id] = member.role.value
            name = member.display_name.strip()
            if member.id != subject.id and len(name) >= 2:
                names.setdefault(name.lower(), f"[{member.role.value}]")
        own = subject.display_name.strip()
        if own:
            names[own.lower()] = None  # the member's own name stays
        self.replacements = names
        alternatives = sorted(names, key=len, reverse=True)
        self.pattern = (
            re.compile(
                "|".join(rf"(?<!\w){re.escape(n)}(?!\w)" for n in alternatives), re.IGNORECASE
            )
            if alternatives
            else None
        )

    def person(self, member_id: int | None) -> str | None:
        """ "self", another member's role, or None (the bot, or a link removed)."""
        if member_id is None:
            return None
        if member_id == self.subject_id:
            return SELF
        return self.roles.get(member_id, "member")

    def _replace(self, match: re.Match[str]) -> str:
        found = match.group(0)
        replacement = self.replacements.get(found.lower(), "[member]")
        return found if replacement is None else replacement

    def text(self, value: str) -> str:
        """Free text with other members' names replaced by their role."""
        return value if self.pattern is None else self.pattern.sub(self._replace, value)

    def value(self, value: Any) -> Any:
        """Any JSON value with every string redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {str(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


def _mentions(value: Any, member_id: int) -> bool:
    if isinstance(value, list):
        return member_id in value
    return bool(value == member_id)


def timeline_entry(event: TimelineEvent, redactor: Redactor) -> dict[str, Any]:
    """One timeline event; what others typed or were told is withheld."""
    data: dict[str, Any] = dict(event.data or {})
    subject = redactor.subject_id
    theirs = event.member_id == subject or _mentions(data.get("to"), subject)
    withheld = []
    if not theirs:
        for key in (*FREE_TEXT[None], *FREE_TEXT.get(event.kind, ())):
            if data.get(key) is not None:
                data.pop(key)
                withheld.append(key)
    if "to" in data:
        to = data["to"]
        data["to"] = (
            [redactor.person(i) for i in to if isinstance(i, int)]
            if isinstance(to, list)
            else redactor.person(to if isinstance(to, int) else None)
        )
    entry: dict[str, Any] = {
        "at": utc_iso(event.at),
        "kind": event.kind,
        "step": event.step,
        "member": redactor.person(event.member_id),
        "data": redactor.value(data),
    }
    if withheld:
        entry["withheld"] = withheld
    return entry


async def member_export(
    session: AsyncSession,
    records: MemberRecords,
    member: Member,
    protocol: Protocol,
    now: datetime,
) -> dict[str, Any]:
    """Everything the program holds about a member, ready for ``json.dumps``."""
    redactor = Redactor(member, await Roster(session).everyone())
    rows = await session.execute(select(School.id, School.name))
    schools = {school_id: name for school_id, name in rows}
    incidents = await records.incidents(member.id)
    codes = {i.id: i.code for i in incidents}
    deliveries = await records.deliveries(member.id)
    acknowledged = await records.acknowledgements(member.id)
    alerted = {incident.id for _, _, incident in deliveries}
    acked = {incident.id for _, incident in acknowledged}
    exported = []
    for incident in incidents:
        events = await records.register.timeline(incident)
        exported.append(_incident(incident, events, redactor, schools, alerted, acked, member.id))
    follows = [
        {"school": school_id, "as": "officer" if row.officer_id == member.id else "backup"}
        for school_id, row in sorted((await Assignments(session).all()).items())
        if member.id in (row.officer_id, row.backup_officer_id)
    ]
    return {
        "version": EXPORT_VERSION,
        "generated_at": utc_iso(now),
        "member": {
            "id": member.id,
            "name": member.display_name,
            "role": member.role.value,
            "language": member.language,
            "active": member.active,
            "schools": [{"id": s.id, "name": s.name} for s in member.schools],
            "follows": follows,
            "created_at": utc_iso(member.created_at),
            "enrolled_at": utc_iso(await records.enrolled_at(member.id)),
        },
        "incidents": exported,
        "messages": [
            _message(event, redactor, codes, protocol, member.language, schools)
            for event in await records.conversation(member.id)
        ],
        "deliveries": [
            {
                "incident": incident.code,
                "kind": chain.kind.value,
                "reason": chain.reason or None,
                "level": delivery.level,
                "number": delivery.seq,
                "created_at": utc_iso(delivery.created_at),
                "sent_at": utc_iso(delivery.sent_at),
                "status": delivery.status,
                "error": delivery.error,
                "text": redactor.text(delivery.text) if delivery.text is not None else None,
                "acknowledged_by": redactor.person(chain.acknowledged_by),
                "acknowledged_at": utc_iso(chain.stopped_at) if chain.acknowledged_by else None,
            }
            for delivery, chain, incident in deliveries
        ],
        "acknowledgements": [
            {
                "incident": incident.code,
                "kind": chain.kind.value,
                "reason": chain.reason or None,
                "alert_started_at": utc_iso(chain.started_at),
                "acknowledged_at": utc_iso(chain.stopped_at),
            }
            for chain, incident in acknowledged
        ],
        "sign_ins": [
            {
                "signed_in_at": utc_iso(row.created_at),
                "expires_at": utc_iso(row.expires_at),
                "signed_out_at": utc_iso(row.ended_at),
            }
            for row in await records.sign_ins(member.id)
        ],
    }


def _incident(
    incident: Incident,
    events: Iterable[TimelineEvent],
    redactor: Redactor,
    schools: Mapping[str, str],
    alerted: set[int],
    acked: set[int],
    member_id: int,
) -> dict[str, Any]:
    timeline = list(events)
    involvement = [
        name
        for name, yes in (
            ("opened", incident.opened_by == member_id),
            ("alerted", incident.id in alerted),
            ("acknowledged", incident.id in acked),
            ("acted", any(e.member_id == member_id for e in timeline)),
        )
        if yes
    ]
    opener = incident.opened_by == member_id
    return {
        "code": incident.code,
        "school": {"id": incident.school_id, "name": schools.get(incident.school_id)},
        "drill": incident.drill,
        "status": incident.status.value,
        "involvement": involvement,
        "opened_by": redactor.person(incident.opened_by),
        "opened_at": utc_iso(incident.opened_at),
        "police_called_at": utc_iso(incident.police_called_at),
        "kit_collected_at": utc_iso(incident.kit_collected_at),
        "meeting_held_at": utc_iso(incident.meeting_held_at),
        "victim_met_at": utc_iso(incident.victim_met_at),
        "closed_at": utc_iso(incident.closed_at),
        "device_count": incident.device_count,
        "event_number": incident.event_number,
        "outcome": incident.outcome,
        "cancel_reason": redactor.text(incident.cancel_reason)
        if opener and incident.cancel_reason
        else None,
        "timeline": [timeline_entry(event, redactor) for event in timeline],
    }


def _message(
    event: TimelineEvent,
    redactor: Redactor,
    codes: Mapping[int, str],
    protocol: Protocol,
    language: str,
    schools: Mapping[str, str],
) -> dict[str, Any]:
    data = event.data or {}
    button = data.get("button")
    entry: dict[str, Any] = {
        "at": utc_iso(event.at),
        "direction": "to_member" if event.kind == EventKind.MESSAGE_OUT else "from_member",
        "kind": event.kind,
        "incident": codes.get(event.incident_id) if event.incident_id else None,
        "step": event.step,
    }
    if isinstance(data.get("text"), str):
        entry["text"] = redactor.text(data["text"])
    if isinstance(button, str):
        entry["button"] = button
        entry["button_label"] = button_label(protocol, button, language, schools)
    if "intent" in data:
        entry["intent"] = data["intent"]
    if event.kind == EventKind.MEDIA_DELETED:
        entry["file"] = data.get("kind")
    return entry


@page(COORDINATORS)
async def export_member(visit: Visit) -> Response:
    """Download a member's data as JSON (a form post: a mere link cannot start it)."""
    dashboard = visit.dashboard
    t = visit.t
    member_id = int(visit.request.path_params["member_id"])
    now = dashboard.now()
    async with dashboard.sessions() as session, session.begin():
        member = await session.get(Member, member_id)
        if member is None:
            return visit.message(t("error.not_found"), t("error.not_found_text"), 404)
        records = visit.me.member_records(session)
        document = await member_export(session, records, member, dashboard.protocol, now)
        await visit.audit(
            session,
            "member_export",
            target=str(member.id),
            data={
                "incidents": len(document["incidents"]),
                "messages": len(document["messages"]),
                "deliveries": len(document["deliveries"]),
            },
        )
    stamp = now.astimezone(dashboard.zone).strftime("%Y%m%d-%H%M")
    body = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    return Response(
        body.encode("utf-8"),
        media_type="application/json; charset=utf-8",
        headers={
            "content-disposition": (
                f'attachment; filename="sexto-member-{member.id}-{stamp}.json"'
            )
        },
    )


ROUTES = [
    Route("/admin/members/{member_id:int}/export", export_member, methods=["POST"]),
]
