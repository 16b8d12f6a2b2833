"""Administration for coordinators: schools, officers, members, codes, and the audit log."""

from __future__ import annotations

import json
import math
from typing import Any

from sqlalchemy import func, select
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dashboard.web import COORDINATORS, Visit, page
from storage.models import EnrollmentCode, Incident, Member, Role, School
from storage.repositories import (
    AssignmentError,
    Assignments,
    AuditLog,
    Enrollment,
    EnrollmentCodes,
    Roster,
    row_id,
)

CODE_ROLES = (Role.PROFESSIONAL, Role.OFFICER, Role.COORDINATOR)
AUDIT_PAGE = 50
MAX_PAGE = 100_000  # beyond any log; a larger number would overflow the database's OFFSET


@page(COORDINATORS)
async def admin_home(visit: Visit) -> Response:
    """The first administration page."""
    return RedirectResponse("/admin/schools", status_code=303)


@page(COORDINATORS)
async def schools(visit: Visit) -> Response:
    """The schools of config.yml, their officers and how many incidents each had."""
    dashboard = visit.dashboard
    async with dashboard.sessions() as session, session.begin():
        rows = (await session.scalars(select(School).order_by(School.name))).all()
        counted = await session.execute(
            select(Incident.school_id, func.count(Incident.id)).group_by(Incident.school_id)
        )
        counts = {school_id: count for school_id, count in counted.all()}
        assignments = await Assignments(session).all()
        ids = [a.officer_id for a in assignments.values()]
        ids += [a.backup_officer_id for a in assignments.values() if a.backup_officer_id]
        names = await Roster(session).names(ids)
        await visit.audit(session, "view_admin", target="schools")
    return visit.render(
        "admin_schools.html",
        notice="",
        schools=rows,
        counts=counts,
        assignments=assignments,
        names=names,
    )


async def _officers_page(visit: Visit, notice: str = "", status: int = 200) -> Response:
    dashboard = visit.dashboard
    async with dashboard.sessions() as session, session.begin():
        rows = (await session.scalars(select(School).order_by(School.name))).all()
        assignments = await Assignments(session).all()
        officers = (
            await session.scalars(
                select(Member)
                .where(Member.role == Role.OFFICER, Member.active.is_(True))
                .order_by(Member.display_name)
            )
        ).all()
        await visit.audit(session, "view_admin", target="officers")
    return visit.render(
        "admin_officers.html",
        status=status,
        schools=rows,
        assignments=assignments,
        officers=officers,
        notice=notice,
    )


@page(COORDINATORS)
async def officers(visit: Visit) -> Response:
    """Each school's officer and backup, with a form to change them."""
    return await _officers_page(visit)


def _member_id(text: str) -> int | None:
    return row_id(text)


@page(COORDINATORS)
async def change_officers(visit: Visit) -> Response:
    """Change a school's officer and backup."""
    dashboard = visit.dashboard
    t = visit.t
    school_id = str(visit.request.path_params["school"])[:40]
    officer_id = _member_id(visit.field("officer"))
    backup_id = _member_id(visit.field("backup"))
    try:
        async with dashboard.sessions() as session, session.begin():
            before = (await Assignments(session).all()).get(school_id)
            previous = (before.officer_id, before.backup_officer_id) if before else (None, None)
            await Assignments(session).change(school_id, officer_id, backup_id)
            await visit.audit(
                session,
                "assignment_changed",
                target=school_id,
                data={
                    "officer": officer_id,
                    "backup": backup_id,
                    "was": {"officer": previous[0], "backup": previous[1]},
                },
            )
    except AssignmentError as error:
        return await _officers_page(visit, t("admin.refused", reason=str(error)), 400)
    return await _officers_page(visit, t("admin.saved"))


async def _members_page(visit: Visit, notice: str = "", status: int = 200) -> Response:
    dashboard = visit.dashboard
    async with dashboard.sessions() as session, session.begin():
        rows = await Roster(session).everyone()
        await visit.audit(session, "view_admin", target="members")
    return visit.render(
        "admin_members.html", status=status, members=rows, notice=notice, when=dashboard.local
    )


@page(COORDINATORS)
async def members(visit: Visit) -> Response:
    """Every member, with (de)activation."""
    return await _members_page(visit)


@page(COORDINATORS)
async def set_active(visit: Visit) -> Response:
    """Deactivate or reactivate a member (their dashboard sessions end on deactivation)."""
    dashboard = visit.dashboard
    t = visit.t
    me = visit.me
    member_id = int(visit.request.path_params["member_id"])
    active = visit.field("active") == "1"
    async with dashboard.sessions() as session, session.begin():
        member = await session.get(Member, member_id)
        if member is None:
            return visit.message(t("error.not_found"), t("error.not_found_text"), 404)
        if member.id == me.member_id:
            refusal = t("admin.self")
        elif member.role is Role.ADMIN and me.role is not Role.ADMIN:
            refusal = t("admin.only_admins")
        else:
            refusal = ""
            if await Roster(session).set_active(member, active, dashboard.now()):
                action = "member_reactivated" if active else "member_deactivated"
                await visit.audit(session, action, target=str(member.id))
    if refusal:
        return await _members_page(visit, t("admin.refused", reason=refusal), 400)
    return await _members_page(visit, t("admin.saved"))


def _code_state(visit: Visit, row: EnrollmentCode, names: dict[int, str]) -> tuple[str, bool]:
    """What became of a code, and whether it can still be revoked."""
    t = visit.t
    dashboard = visit.dashboard
    if row.used_at is not None:
        who = names.get(row.used_by or 0, "?")
        return t("codes.used", name=who, time=dashboard.local(row.used_at)), False
    if row.revoked_at is not None:
        return t("codes.revoked", time=dashboard.local(row.revoked_at)), False
    if row.expires_at <= dashboard.now():
        return t("codes.expired"), False
    return t("codes.valid"), True


async def _codes_page(visit: Visit, **extra: Any) -> Response:
    dashboard = visit.dashboard
    async with dashboard.sessions() as session, session.begin():
        rows = await EnrollmentCodes(session).recent()
        names = await Roster(session).names(r.used_by for r in rows if r.used_by)
        schools = (await session.scalars(select(School).order_by(School.name))).all()
        await visit.audit(session, "view_admin", target="codes")
    codes = [
        {
            "row": row,
            "state": _code_state(visit, row, names),
            "created": dashboard.local(row.created_at),
            "expires": dashboard.local(row.expires_at),
        }
        for row in rows
    ]
    extra.setdefault("created", None)
    extra.setdefault("notice", "")
    status = int(extra.pop("status", 200))
    return visit.render(
        "admin_codes.html", status=status, codes=codes, schools=schools, roles=CODE_ROLES, **extra
    )


@page(COORDINATORS)
async def codes(visit: Visit) -> Response:
    """Enrollment codes: create, revoke, see which were used or expired."""
    return await _codes_page(visit)


@page(COORDINATORS)
async def create_code(visit: Visit) -> Response:
    """Create an enrollment code and show it, once."""
    dashboard = visit.dashboard
    t = visit.t
    roles = {r.value: r for r in CODE_ROLES}
    role = roles.get(visit.field("role"))
    school_id = visit.field("school") or None
    if role is None:
        return await _codes_page(visit, notice=t("error.bad_request"), status=400)
    if role is Role.PROFESSIONAL and school_id is None:
        return await _codes_page(
            visit, notice=t("admin.refused", reason=t("codes.needs_school")), status=400
        )
    async with dashboard.sessions() as session, session.begin():
        if school_id is not None and await session.get(School, school_id) is None:
            return await _codes_page(visit, notice=t("error.bad_request"), status=400)
        code, row = await Enrollment(session).create_code(
            role, school_id, dashboard.now(), dashboard.config.enrollment.code_ttl
        )
        await visit.audit(
            session,
            "code_created",
            target=str(row.id),
            data={"role": role.value, "school": school_id},
        )
    username = dashboard.config.telegram.bot_username
    return await _codes_page(
        visit,
        created={
            "code": code,
            "expires": dashboard.local(row.expires_at),
            "link": f"https://t.me/{username}?start={code}" if username else "",
        },
    )


@page(COORDINATORS)
async def revoke_code(visit: Visit) -> Response:
    """Revoke an unused enrollment code."""
    dashboard = visit.dashboard
    code_id = int(visit.request.path_params["code_id"])
    async with dashboard.sessions() as session, session.begin():
        if await EnrollmentCodes(session).revoke(code_id, dashboard.now()):
            await visit.audit(session, "code_revoked", target=str(code_id))
            notice = visit.t("admin.saved")
        else:
            notice = visit.t("error.bad_request")
    return await _codes_page(visit, notice=notice)


@page(COORDINATORS)
async def audit(visit: Visit) -> Response:
    """The audit log, newest first."""
    dashboard = visit.dashboard
    try:
        number = min(max(int(visit.request.query_params.get("page", "1")), 1), MAX_PAGE)
    except ValueError:
        number = 1
    async with dashboard.sessions() as session, session.begin():
        rows, total = await AuditLog(session).page((number - 1) * AUDIT_PAGE, AUDIT_PAGE)
        names = await Roster(session).names(r.member_id for r in rows if r.member_id)
        await visit.audit(session, "view_audit", data={"page": number})
    entries = [
        {
            "at": dashboard.local(row.at, with_seconds=True),
            "who": names.get(row.member_id, f"#{row.member_id}") if row.member_id else "",
            "action": row.action,
            "target": row.target or "",
            "data": json.dumps(row.data, ensure_ascii=False, sort_keys=True) if row.data else "",
        }
        for row in rows
    ]
    return visit.render(
        "audit.html",
        entries=entries,
        page=number,
        pages=max(math.ceil(total / AUDIT_PAGE), 1),
        total=total,
    )


ROUTES = [
    Route("/admin", admin_home),
    Route("/admin/schools", schools),
    Route("/admin/officers", officers),
    Route("/admin/officers/{school}", change_officers, methods=["POST"]),
    Route("/admin/members", members),
    Route("/admin/members/{member_id:int}/active", set_active, methods=["POST"]),
    Route("/admin/codes", codes, methods=["GET"]),
    Route("/admin/codes", create_code, methods=["POST"]),
    Route("/admin/codes/{code_id:int}/revoke", revoke_code, methods=["POST"]),
    Route("/audit", audit),
]
