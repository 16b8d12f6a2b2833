"""The drill simulator's pages (local mode only): the web chat and the officers' panel."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dashboard.presentation import duration, telegram_html
from dashboard.simulator import COMMANDS, Simulator
from dashboard.web import Visit, page
from storage.repositories import row_id

FORWARD_CHOICES = (1, 5, 10, 15, 30, 60)


def _simulator(visit: Visit) -> Simulator:
    simulator = visit.dashboard.simulator
    if simulator is None:
        raise LookupError("local mode without a simulator")
    return simulator


def _back() -> Response:
    return RedirectResponse("/drill", status_code=303)


@page(local_only=True)
async def chat(visit: Visit) -> Response:
    """The web chat and the officers' panel."""
    dashboard = visit.dashboard
    simulator = _simulator(visit)
    notice = simulator.notice
    simulator.notice = None
    recipients = await simulator.recipients()
    would = await simulator.would_alert()
    async with dashboard.sessions() as session, session.begin():
        await visit.audit(session, "view_drill")
    school = dashboard.config.school(simulator.school_id).name
    t = visit.t
    if notice is not None and notice.startswith("drill."):
        notice = t(notice)
    return visit.render(
        "drill.html",
        lines=simulator.lines,
        recipients=recipients,
        would=", ".join(would) if would else t("drill.nobody"),
        school=school,
        drill_copies=not dashboard.config.escalation.drills_alert_officers,
        notice=notice,
        simulated=dashboard.local(dashboard.now(), with_seconds=True),
        ahead=duration(simulator.ahead) if simulator.ahead else "",
        can_forward=simulator.can_forward,
        forward_choices=FORWARD_CHOICES,
        commands=list(COMMANDS),
        html=telegram_html,
        when=lambda moment: dashboard.local(moment, with_seconds=True),
    )


async def _audited(visit: Visit, action: str, target: str | None = None) -> None:
    async with visit.dashboard.sessions() as session, session.begin():
        await visit.audit(session, f"drill_{action}", target=target)


@page(local_only=True)
async def start(visit: Visit) -> Response:
    """Start a drill."""
    await _simulator(visit).start(visit.language)
    await _audited(visit, "start")
    return _back()


@page(local_only=True)
async def press(visit: Visit) -> Response:
    """Press a button of the chat."""
    line = visit.field("line")
    data = visit.field("data")[:64]
    await _simulator(visit).press(data, visit.language, int(line) if line.isdecimal() else None)
    await _audited(visit, "press", data)
    return _back()


@page(local_only=True)
async def say(visit: Visit) -> Response:
    """Type in the chat."""
    await _simulator(visit).say(visit.field("text"), visit.language)
    await _audited(visit, "say")
    return _back()


@page(local_only=True)
async def command(visit: Visit) -> Response:
    """/status, /help, /lang or /cancel."""
    name = visit.field("name")
    await _simulator(visit).command(name, visit.language)
    await _audited(visit, "command", name[:20])
    return _back()


@page(local_only=True)
async def acknowledge(visit: Visit) -> Response:
    """Acknowledge an alert as the officer it went to."""
    member = row_id(visit.field("member"))
    data = visit.field("data")[:64]
    if member is not None:
        await _simulator(visit).acknowledge(data, member)
        await _audited(visit, "acknowledge", data)
    return _back()


@page(local_only=True)
async def forward(visit: Visit) -> Response:
    """Move the simulated time forward."""
    minutes = visit.field("minutes")
    if minutes.isdecimal() and int(minutes) in FORWARD_CHOICES:
        await _simulator(visit).forward(int(minutes))
        await _audited(visit, "forward", minutes)
    return _back()


ROUTES = [
    Route("/drill", chat),
    Route("/drill/start", start, methods=["POST"]),
    Route("/drill/press", press, methods=["POST"]),
    Route("/drill/say", say, methods=["POST"]),
    Route("/drill/command", command, methods=["POST"]),
    Route("/drill/ack", acknowledge, methods=["POST"]),
    Route("/drill/forward", forward, methods=["POST"]),
]
