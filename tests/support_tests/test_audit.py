"""The reminder audit keeps to the bot's rule: the schedule is decided when a reminder is sent."""

from datetime import UTC, datetime, timedelta

from storage.models import Delivery, Escalation, EscalationKind, Incident
from tests.support.audit import Ledger, audit_reminders
from tests.support.botapi import CallRecord
from tests.support.chaos import crash_window_duplicates

START = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
EVERY = timedelta(seconds=3)


def _ledger(decided: dict[int, datetime]) -> Ledger:
    chain = Escalation(id=1, incident_id=1, kind=EscalationKind.CALL_911, started_at=START)
    deliveries = [
        Delivery(
            escalation_id=1,
            seq=number,
            level="professional",
            text=f"Reminder {number}: call 911 (SX-2026-0001)",
            created_at=moment,
        )
        for number, moment in decided.items()
    ]
    return Ledger([Incident(id=1, code="SX-2026-0001")], [chain], deliveries, [])


def _arrived(arrivals: dict[int, datetime]) -> list[CallRecord]:
    return [
        CallRecord("sendMessage", {"text": f"Reminder {n}: call 911 (SX-2026-0001)"}, at, ok=True)
        for n, at in arrivals.items()
    ]


def test_a_reminder_resent_late_after_a_crash_keeps_the_schedule() -> None:
    # Reminder 1 decided on time but delivered more than a period later (resent after a
    # restart); reminder 2, overdue by then, follows at once: on the original schedule.
    restarted = START + 2 * EVERY + timedelta(seconds=0.5)
    ledger = _ledger({1: START + EVERY, 2: restarted + timedelta(seconds=0.1)})
    calls = _arrived({1: restarted, 2: restarted + timedelta(seconds=0.2)})
    audit = audit_reminders(ledger, calls, EVERY)
    assert audit.early == []
    assert audit.skipped_periods == 0


def test_a_reminder_sent_before_its_time_is_early() -> None:
    ledger = _ledger({1: START + EVERY, 2: START + EVERY + timedelta(seconds=1)})
    calls = _arrived({1: START + EVERY, 2: START + EVERY + timedelta(seconds=1)})
    audit = audit_reminders(ledger, calls, EVERY)
    assert audit.early == ["SX-2026-0001: reminder 2 2.00s early"]


def test_a_reminder_decided_more_than_a_period_late_moves_the_schedule() -> None:
    late = START + EVERY + timedelta(seconds=4)
    ledger = _ledger({1: late, 2: late + EVERY})
    calls = _arrived({1: late, 2: late + EVERY})
    audit = audit_reminders(ledger, calls, EVERY)
    assert audit.early == []
    assert audit.skipped_periods == 1


def _resent(first: datetime, second: datetime) -> tuple[list[str], list[str]]:
    chain = Escalation(id=1, incident_id=1, kind=EscalationKind.CALL_911, started_at=START)
    delivery = Delivery(
        id=6, escalation_id=1, seq=1, level="professional", chat_id=7, text="Reminder 1"
    )
    ledger = Ledger([Incident(id=1, code="SX-2026-0001")], [chain], [delivery], [])
    calls = [
        CallRecord("sendMessage", {"chat_id": 7, "text": "Reminder 1"}, at, ok=True)
        for at in (first, second)
    ]
    kill = START + timedelta(seconds=10)
    return crash_window_duplicates(ledger, calls, [kill], [kill + timedelta(seconds=2)])


def test_a_message_sent_just_before_a_kill_may_come_again_after_the_restart() -> None:
    kill = START + timedelta(seconds=10)
    after_restart = kill + timedelta(seconds=3)
    window = (["delivery 6 (professional) accepted 2 times"], [])
    assert _resent(kill - timedelta(seconds=0.4), after_restart) == window
    # The killed bot's last request, read by the server after the kill was noted.
    assert _resent(kill + timedelta(seconds=0.02), after_restart) == window


def test_other_repeats_are_bugs() -> None:
    kill = START + timedelta(seconds=10)
    twice = ([], ["delivery 6 (professional) accepted 2 times"])
    # Long before the kill: the program had all the time to record it.
    assert _resent(kill - timedelta(seconds=3), kill + timedelta(seconds=3)) == twice
    # Both copies from the same process, before it was started again.
    assert _resent(kill - timedelta(seconds=0.3), kill + timedelta(seconds=1)) == twice
    assert _resent(kill - timedelta(seconds=0.5), kill - timedelta(seconds=0.2)) == twice
