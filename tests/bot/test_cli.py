"""The sexto command as an operator uses it: init, enroll, chat, run in local mode."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import TEST_CONFIG
from tests.support.process import environment, run, sexto_executable, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    config = write_config(tmp_path, telegram={"bot_username": "sexto_demo_bot"})
    return environment(config, f"sqlite:///{tmp_path / 'cli.db'}")


sexto = run


def test_init_is_idempotent(env: dict[str, str]) -> None:
    first = sexto(env, "init")
    assert first.returncode == 0, first.stderr
    assert "Schools: 2 in config.yml (2 added, 0 updated)" in first.stdout
    second = sexto(env, "init")
    assert "(0 added, 0 updated)" in second.stdout


def test_enroll_prints_a_code_and_its_link(env: dict[str, str]) -> None:
    result = sexto(env, "enroll", "--role", "professional", "--school", "nord")
    assert result.returncode == 0, result.stderr
    code = re.search(r"Enrollment code \(professional, nord\): ([A-Z0-9]+)", result.stdout)
    assert code
    assert f"https://t.me/sexto_demo_bot?start={code.group(1)}" in result.stdout
    assert f"/start {code.group(1)}" in result.stdout
    assert "Single use, valid until" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--role", "professional"), "a professional needs --school"),
        (("--role", "officer", "--school", "atlantis"), "unknown school 'atlantis'"),
        (
            (
                "--role",
                "janitor",
            ),
            "Invalid value for '--role'",
        ),
    ],
)
def test_enroll_refuses_bad_input(
    env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    result = sexto(env, "enroll", *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_bad_config_key_stops_every_command(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(dict(TEST_CONFIG, escalation={"remind_every": "5m"})))
    result = sexto(dict(env, SEXTO_CONFIG=str(bad)), "init")
    assert result.returncode == 1
    assert "escalation.remind_every: unknown key" in result.stderr


def test_a_config_that_is_not_utf8_is_named(env: dict[str, str], tmp_path: Path) -> None:
    latin = tmp_path / "latin1.yml"
    latin.write_bytes(yaml.safe_dump(dict(TEST_CONFIG), allow_unicode=True).encode("latin-1"))
    result = sexto(dict(env, SEXTO_CONFIG=str(latin)), "init")
    assert result.returncode == 1
    assert f"Error: {latin} is not UTF-8 text" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("command", "url", "said"),
    [
        (("init",), "postgresql://sexto:s3cret@127.0.0.1:1/sexto", "Connect call failed"),
        (("enroll", "--role", "officer"), "postgresql://sexto@127.0.0.1:1/sexto", "Connect"),
        (("admin", "login-link", "--member", "1"), "postgresql://127.0.0.1:1/x", "Connect"),
        (("run",), "postgresql://127.0.0.1:1/x", "Connect call failed"),
    ],
)
def test_a_database_out_of_reach_is_said_plainly(
    env: dict[str, str], command: tuple[str, ...], url: str, said: str
) -> None:
    """Nothing listens on port 1: every command stops at once with the URL (its password
    hidden) and the driver's reason, not a traceback."""
    result = sexto(dict(env, DATABASE_URL=url), *command)
    assert result.returncode == 1, result.stderr
    assert "Error: cannot connect to the database postgresql+asyncpg://" in result.stderr
    assert said in result.stderr
    assert "(DATABASE_URL)" in result.stderr
    assert "s3cret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_sqlite_file_that_cannot_be_made_is_said_plainly(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The SQLite file's folder would be inside a regular file: the key file made beside it in
    local mode cannot be written, and with keys given the database cannot be opened."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    url = f"sqlite:///{blocker / 'sexto.db'}"
    local = sexto(dict(env, DATABASE_URL=url, SEXTO_ENCRYPTION_KEYS=""), "init")
    assert local.returncode == 1
    assert f"Error: cannot create the key file {blocker / 'sexto.key'}" in local.stderr
    assert "Traceback" not in local.stderr
    keyed = sexto(dict(env, DATABASE_URL=url), "init")
    assert keyed.returncode == 1
    assert "Error: cannot create the folder of the SQLite database" in keyed.stderr
    assert "Traceback" not in keyed.stderr


def test_the_console_chat_walks_an_incident(env: dict[str, str]) -> None:
    typed = "\n".join(
        [
            "/lang en",
            "/incident",
            "a",
            "a",
            "b",
            "a",
            "a",
            "3",
            "a",
            "a",
            "EV-1",
            "a",
            "a",
            "/quit",
        ]
    )
    result = sexto(env, "chat", "--school", "nord", stdin=typed + "\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[a] Real situation   [b] Drill" in out
    assert "Incident SX-" in out
    assert "Never, at any time" in out
    assert "3 phone(s) bagged" in out
    assert "Event number EV-1 recorded." in out
    assert "Summary of incident" in out
    assert "<b>" not in out  # Telegram markup is not shown in a terminal


def test_the_console_chat_takes_bytes_that_are_not_utf8(env: dict[str, str]) -> None:
    typed = b"/lang en\n/incident\n\xff\xfe what now \xe9\n/quit\n"
    result = subprocess.run(
        [sexto_executable(), "chat", "--school", "nord"],
        input=typed,
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"Traceback" not in result.stderr
    assert "Is this a real situation" in result.stdout.decode()


def test_run_without_a_token_is_local_mode(env: dict[str, str]) -> None:
    result = sexto(env, "run", "--console", stdin="/incident\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert "local mode" in result.stderr
    assert "Is this a real situation" in result.stdout or "situation réelle" in result.stdout
