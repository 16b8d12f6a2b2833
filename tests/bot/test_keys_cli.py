"""Encryption keys as an operator handles them: local key file, production, ``sexto keys``."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bot.runtime import Runtime
from bot.settings import Config
from storage.crypto import KeyRing, generate_key, parse_keys
from storage.database import create_engine
from tests.conftest import settings_for
from tests.storage.test_encryption import guided_incident, snapshot
from tests.support.clock import FrozenClock
from tests.support.messenger import RecordingMessenger
from tests.support.process import environment, run, write_config

pytestmark = pytest.mark.slow

TOKEN = "123456:ABC-def_ghi"
# The console chat of an incident in which the professional types a distinctive phrase.
TYPED = "the blue backpack in locker 2290 near the cafeteria"
WALK = [
    "/lang en",
    "/incident",
    "a",
    f"The phone is in {TYPED}, may I look at it?",
    "a",
    "b",
    "a",
    "a",
    "3",
    "a",
    "a",
    "EV-77310-KB",
    "a",
    "a",
    "/quit",
]


@pytest.fixture
def local(tmp_path: Path) -> dict[str, str]:
    """Local mode without SEXTO_ENCRYPTION_KEYS: the key file beside the database."""
    config = write_config(tmp_path)
    return environment(config, f"sqlite:///{tmp_path / 'cli.db'}", SEXTO_ENCRYPTION_KEYS="")


def test_generate_prints_a_new_key_each_time(local: dict[str, str]) -> None:
    first, second = run(local, "keys", "generate"), run(local, "keys", "generate")
    assert first.returncode == 0, first.stderr
    assert parse_keys(first.stdout) == (first.stdout.strip(),)
    assert first.stdout != second.stdout
    assert "first in SEXTO_ENCRYPTION_KEYS" in first.stderr
    # It needs no configuration at all, not even in production without a key.
    bare = run(
        {**local, "TELEGRAM_BOT_TOKEN": TOKEN, "SEXTO_CONFIG": "/nowhere"}, "keys", "generate"
    )
    assert bare.returncode == 0, bare.stderr


def test_local_mode_keeps_the_transcript_encrypted_with_a_private_key_file(
    local: dict[str, str], tmp_path: Path
) -> None:
    chat = run(local, "chat", "--school", "nord", stdin="\n".join(WALK) + "\n")
    assert chat.returncode == 0, chat.stderr
    assert "Event number EV-77310-KB recorded." in chat.stdout
    key_file = tmp_path / "cli.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()

    stored = b"".join(p.read_bytes() for p in tmp_path.glob("cli.db*"))
    assert b"locker 2290" not in stored
    assert b"EV-77310-KB" not in stored

    again = run(local, "chat", "--school", "nord", stdin="/lang en\n/status\n/quit\n")
    assert again.returncode == 0, again.stderr
    assert "911 called (event no. EV-77310-KB)" in again.stdout  # read back with the key file
    assert key_file.read_text().strip() == key  # reused, not replaced

    key_file.chmod(0o644)
    refused = run(local, "init")
    assert refused.returncode == 1
    assert f"{key_file} can be read by other users (mode 0644)" in refused.stderr
    assert f"chmod 600 {key_file}" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.parametrize("keys", ["", "   "])
def test_production_without_a_key_refuses_to_start(local: dict[str, str], keys: str) -> None:
    result = run({**local, "TELEGRAM_BOT_TOKEN": TOKEN, "SEXTO_ENCRYPTION_KEYS": keys}, "run")
    assert result.returncode == 1
    assert "SEXTO_ENCRYPTION_KEYS is not set" in result.stderr
    assert "sexto keys generate" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_malformed_key_is_named_and_not_echoed(local: dict[str, str]) -> None:
    bad = f"{generate_key()},secret-but-wrong"
    result = run({**local, "SEXTO_ENCRYPTION_KEYS": bad}, "init")
    assert result.returncode == 1
    assert "SEXTO_ENCRYPTION_KEYS: encryption key 2 of 2 is not a Fernet key" in result.stderr
    assert "secret-but-wrong" not in result.stderr


async def test_rotate_moves_everything_to_the_new_key(
    tmp_path: Path, database_url: str, clock: FrozenClock, config: Config
) -> None:
    old, new = generate_key(), generate_key()
    before = Runtime.create(settings_for(config, database_url, encryption_keys=(old,)), clock)
    before.escalator.messenger = RecordingMessenger()
    await before.prepare_database()
    try:
        await guided_incident(before, clock)
    finally:
        await before.close()
    engine = create_engine(database_url, KeyRing([old]))
    try:
        expected = await snapshot(engine)
    finally:
        await engine.dispose()
    env = environment(write_config(tmp_path), database_url)

    refused = run({**env, "SEXTO_ENCRYPTION_KEYS": new}, "keys", "rotate")
    assert refused.returncode == 1
    assert "cannot decrypt a stored value" in refused.stderr
    assert "of row" in refused.stderr
    missing = run({**env, "SEXTO_ENCRYPTION_KEYS": ""}, "keys", "rotate")
    assert missing.returncode == 1
    assert "SEXTO_ENCRYPTION_KEYS is not set" in missing.stderr

    rotated = run(
        {**env, "SEXTO_ENCRYPTION_KEYS": f"{new},{old}"}, "keys", "rotate", "--batch-size", "4"
    )
    assert rotated.returncode == 0, rotated.stderr
    assert "timeline_events.data: 4/" in rotated.stderr  # progress, batch by batch
    assert (
        "incidents.event_number: 1 re-encrypted, 0 already with the newest key" in rotated.stdout
    )
    assert "the older keys can be removed" in rotated.stdout
    again = run({**env, "SEXTO_ENCRYPTION_KEYS": f"{new},{old}"}, "keys", "rotate")
    assert again.returncode == 0, again.stderr
    assert "Re-encrypted 0 value(s) with the newest key" in again.stdout

    engine = create_engine(database_url, KeyRing([new]))
    try:
        assert await snapshot(engine) == expected
    finally:
        await engine.dispose()
