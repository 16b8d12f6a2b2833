"""Enrollment codes: hashed, single-use, expiring; guessing them is slowed down and logged."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from bot.runtime import Runtime
from bot.settings import Config, ConfigError, parse_config
from storage.models import EnrollmentAttempt, EnrollmentCode, Member, Role
from storage.repositories import Enrollment, EnrollmentCodes
from tests.conftest import TEST_CONFIG, settings_for
from tests.e2e.conftest import Bot
from tests.support.clock import FrozenClock

GUESSER = 4242
WRONG = [f"GUESS{n:07d}" for n in range(12)]
LOCKED_EN = "Too many wrong enrollment codes"
LOCKED_FR = "Trop de codes d'inscription erronés"


async def new_code(
    runtime: Runtime, role: Role = Role.PROFESSIONAL, ttl: timedelta = timedelta(days=3)
) -> str:
    """A fresh code, as `sexto enroll` prints it."""
    async with runtime.sessions() as session, session.begin():
        code, _ = await Enrollment(session).create_code(
            role, "nord" if role is Role.PROFESSIONAL else None, runtime.clock.now(), ttl
        )
    return code


async def attempt(
    runtime: Runtime, code: str, user: int = GUESSER, language: str = "en"
) -> tuple[Member | None, str]:
    """Someone sends /start CODE from Telegram account ``user``."""
    return await runtime.guide.enroll(code, user, "Curious", language)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_five_wrong_codes_lock_the_account_out_for_half_an_hour(
    runtime: Runtime, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    right = await new_code(runtime)
    for guess in WRONG[:4]:
        member, said = await attempt(runtime, guess)
        assert member is None
        assert said == "This enrollment code does not exist. Check it or ask for a new one."
    clock.advance(minutes=5)
    member, said = await attempt(runtime, WRONG[4])
    assert member is None
    assert said.startswith("This enrollment code does not exist.")
    # 09:35 in Montréal, locked out for 30 minutes.
    assert f"{LOCKED_EN}. For security, your attempts are refused until 10:05 (Montréal" in said

    clock.advance(minutes=10)
    member, said = await attempt(runtime, right)  # the right code, during the lockout
    assert member is None
    assert said.startswith(LOCKED_EN)
    assert "until 10:05" in said
    async with runtime.sessions() as session:
        row = (await session.scalars(select(EnrollmentCode))).one()
        assert row.used_at is None  # not even looked at: still valid for later

    logged = warnings(caplog)
    wrong = [line for line in logged if line.startswith("wrong enrollment code")]
    assert [line.split(": ")[1].split(" of ")[0] for line in wrong] == ["1", "2", "3", "4", "5"]
    assert all(f"Telegram user {GUESSER}" in line for line in wrong)
    assert any(
        f"Telegram user {GUESSER} locked out of enrollment until 2026-11-21T15:05:00" in line
        for line in logged
    )
    assert any("enrollment attempt refused" in line for line in logged)
    every_line = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(code in every_line for code in [right, *WRONG])  # never a code in the logs

    clock.advance(minutes=20)  # 10:05: the lockout is over
    member, said = await attempt(runtime, right)
    assert member is not None
    assert said.startswith("Welcome, Curious.")


async def test_a_lockout_holds_across_a_restart_and_in_another_process(
    config: Config, database_url: str, clock: FrozenClock, runtime: Runtime
) -> None:
    right = await new_code(runtime)
    for guess in WRONG[:5]:
        await attempt(runtime, guess)
    await runtime.close()  # the program stops (its state was only in the database)
    # Another process (or the same program restarted) on the same database.
    other = Runtime.create(settings_for(config, database_url), clock=clock)
    try:
        member, said = await attempt(other, right)
        assert member is None
        assert said.startswith(LOCKED_EN)
    finally:
        await other.close()


async def test_other_accounts_are_not_locked_out(runtime: Runtime) -> None:
    right = await new_code(runtime)
    for guess in WRONG[:5]:
        await attempt(runtime, guess)
    member, said = await attempt(runtime, right, user=GUESSER + 1)
    assert member is not None
    assert said.startswith("Welcome")


async def test_wrong_codes_spread_over_time_are_not_punished(
    runtime: Runtime, clock: FrozenClock
) -> None:
    right = await new_code(runtime)
    for guess in WRONG[:4]:
        await attempt(runtime, guess)
    clock.advance(minutes=16)  # the first four are out of the 15-minute window
    for guess in WRONG[4:8]:
        _, said = await attempt(runtime, guess)
        assert LOCKED_EN not in said
    member, _ = await attempt(runtime, right)
    assert member is not None


async def test_after_a_lockout_the_count_starts_again(
    runtime: Runtime, clock: FrozenClock
) -> None:
    for guess in WRONG[:5]:
        await attempt(runtime, guess)
    clock.advance(minutes=30)
    _, said = await attempt(runtime, WRONG[5])
    assert LOCKED_EN not in said  # one wrong code after the lockout is not a new lockout
    for guess in WRONG[6:10]:
        _, said = await attempt(runtime, guess)
    assert "until 10:30" in said  # the fifth wrong code since the lockout ended


async def test_expired_used_and_revoked_codes_are_refused_and_count_as_wrong(
    runtime: Runtime, clock: FrozenClock
) -> None:
    expired = await new_code(runtime, ttl=timedelta(minutes=10))
    used = await new_code(runtime)
    revoked = await new_code(runtime)
    assert (await attempt(runtime, used, user=1))[0] is not None
    async with runtime.sessions() as session, session.begin():
        [revoked_row] = [r for r in await EnrollmentCodes(session).recent() if r.id == 3]
        assert await EnrollmentCodes(session).revoke(revoked_row.id, clock.now())
    clock.advance(minutes=11)
    _, said = await attempt(runtime, expired)
    assert said == "This enrollment code has expired. Ask your coordinator for a new one."
    _, said = await attempt(runtime, used)
    assert said == "This enrollment code has already been used. Each code works only once."
    _, said = await attempt(runtime, revoked)
    assert said == "This enrollment code was revoked. Ask your coordinator for a new one."
    _, said = await attempt(runtime, "")  # a malformed code (the handler passes it as "")
    _, said = await attempt(runtime, WRONG[0])
    assert LOCKED_EN in said


async def test_the_lockout_is_explained_in_french(runtime: Runtime, clock: FrozenClock) -> None:
    clock.advance(hours=14)  # 23:45 in Montréal: the lockout ends the next day
    clock.advance(minutes=15)
    for guess in WRONG[:5]:
        _, said = await attempt(runtime, guess, language="fr")
    assert said.startswith("Ce code d'inscription n'existe pas.")
    assert LOCKED_FR in said
    assert "jusqu'à 2026-11-22 00:15 (heure de Montréal)" in said


async def test_attempts_keep_no_code_and_are_forgotten_when_no_longer_needed(
    runtime: Runtime, clock: FrozenClock
) -> None:
    for guess in WRONG[:5]:
        await attempt(runtime, guess)
    async with runtime.sessions() as session:
        raw = (await session.execute(text("SELECT * FROM enrollment_attempts"))).all()
    assert len(raw) == 5
    assert not any(guess in repr(raw) for guess in WRONG)
    clock.advance(hours=1)  # the lockout and the window are over
    await attempt(runtime, WRONG[5], user=GUESSER + 7)
    async with runtime.sessions() as session:
        left = await session.scalars(select(EnrollmentAttempt.telegram_user_id))
        assert left.all() == [GUESSER + 7]


async def test_a_guesser_on_telegram_is_locked_out(telegram: Bot) -> None:
    server = telegram.server
    right = await telegram.code(Role.PROFESSIONAL)
    guesser = server.add_user(GUESSER, "Curious", language_code="en")
    for guess in WRONG[:5]:
        server.send_text(guesser, f"/start {guess}")
        reply = await server.wait_for_message(GUESSER)
    assert LOCKED_EN in reply["text"]
    server.send_text(guesser, f"/start {right}")
    reply = await server.wait_for_message(GUESSER)
    assert reply["text"].startswith(LOCKED_EN)
    server.send_text(guesser, "/start not-even-a-code!")
    reply = await server.wait_for_message(GUESSER)
    assert reply["text"].startswith(LOCKED_EN)
    async with telegram.runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Member)) == 0


async def test_a_code_redeemed_twice_at_the_same_moment_enrolls_one_account(
    config: Config, database_url: str, clock: FrozenClock, runtime: Runtime
) -> None:
    code = await new_code(runtime)
    # Two processes, each with its own connections, take the same code at the same moment.
    other = Runtime.create(settings_for(config, database_url), clock=clock)
    try:
        results = await asyncio.gather(
            attempt(runtime, code, user=1), attempt(other, code, user=2), return_exceptions=True
        )
    finally:
        await other.close()
    outcomes = [r for r in results if not isinstance(r, BaseException)]
    assert len(outcomes) == 2, results  # neither failed
    assert len([member for member, _ in outcomes if member is not None]) == 1, results
    said = [text for member, text in outcomes if member is None]
    assert said == ["This enrollment code has already been used. Each code works only once."]
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Member)) == 1


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"max_wrong_codes": 0}, "enrollment.max_wrong_codes"),
        ({"wrong_code_window": "soon"}, "enrollment.wrong_code_window"),
        ({"lockout": "-5m"}, "enrollment.lockout"),
    ],
)
def test_bad_throttling_settings_are_named(values: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        parse_config({**TEST_CONFIG, "enrollment": values})
    defaults = parse_config(TEST_CONFIG).enrollment
    assert (defaults.max_wrong_codes, defaults.wrong_code_window, defaults.lockout) == (
        5,
        timedelta(minutes=15),
        timedelta(minutes=30),
    )
