"""What the benchmark reads off the bot's process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.load import cpu_seconds, peak_rss_mb


def test_processor_time_counts_what_a_process_computed() -> None:
    before = cpu_seconds(os.getpid())
    assert before is not None
    until = time.process_time() + 0.3
    while time.process_time() < until:
        pass
    after = cpu_seconds(os.getpid())
    assert after is not None
    assert 0.2 <= after - before <= 5


def test_a_process_that_is_gone_has_no_figures() -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    gone = int(child.stdout)
    assert cpu_seconds(gone) is None
    assert peak_rss_mb(gone) == 0.0
