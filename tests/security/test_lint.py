"""ruff's security rules (flake8-bandit, ``S``) find nothing in the project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_security_rules_are_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "S", "--no-cache", "--quiet", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
