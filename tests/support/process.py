"""Run the real ``sexto`` program as a separate process, as an operator would."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import TEST_CONFIG, TEST_ENCRYPTION_KEY


def sexto_executable() -> str:
    """The console script installed in the test environment."""
    executable = shutil.which("sexto", path=str(Path(sys.executable).parent))
    if executable is None:
        raise RuntimeError("the sexto console script is not installed in this environment")
    return executable


def write_config(folder: Path, **changes: Any) -> Path:
    """A config file for a test: the test schools plus ``changes``."""
    path = folder / "config.yml"
    data = dict(TEST_CONFIG, **changes)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def environment(config: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The process environment: the caller's, minus anything of ours, plus the given values.

    The encryption key is the test session's (``SEXTO_ENCRYPTION_KEYS=""`` to go without).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SEXTO_"))}
    env.update(SEXTO_CONFIG=str(config), DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
    env.update(SEXTO_ENCRYPTION_KEYS=TEST_ENCRYPTION_KEY)
    env.update(extra)
    return env


def run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run one sexto command to completion."""
    return subprocess.run(
        [sexto_executable(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def enroll(env: dict[str, str], role: str, school: str | None = "nord") -> str:
    """A fresh enrollment code from ``sexto enroll``."""
    args = ["enroll", "--role", role] + (["--school", school] if school else [])
    result = run(env, *args)
    assert result.returncode == 0, result.stderr
    found = re.search(r"Enrollment code \([^)]*\): ([A-Z0-9]+)", result.stdout)
    assert found, result.stdout
    return found.group(1)


class BotProcess:
    """``sexto run`` in the background, its output in a log file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the bot."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sexto_executable(), "run"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """Kill -9: no chance to clean up."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM, as a supervisor would; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def output(self) -> str:
        """Everything the process printed."""
        return self.log.read_text(encoding="utf-8", errors="replace")
