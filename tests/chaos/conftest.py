"""Chaos tests: the real bot process under crashes and faults (marked slow, run by make test).

``SEXTO_CHAOS_TRIALS`` sets the number of kill -9 trials, shared between SQLite and PostgreSQL
(default 5; ``make chaos`` runs 50), and ``SEXTO_CHAOS_SEED`` replays a run (the seed is
printed, and recorded in the test report's user properties).
"""

from __future__ import annotations

import os
import random
import secrets

import pytest

TRIALS = int(os.environ.get("SEXTO_CHAOS_TRIALS", "5"))


def trials_on(backend: str) -> int:
    """This database's share of the trials (SQLite takes the odd one)."""
    return (TRIALS + 1) // 2 if backend == "sqlite" else TRIALS // 2


@pytest.fixture
def chaos_rng(request: pytest.FixtureRequest) -> random.Random:
    """A random generator whose seed is reported with the test's outcome."""
    seed = int(os.environ.get("SEXTO_CHAOS_SEED") or secrets.randbits(32))
    request.node.user_properties.append(("chaos_seed", seed))
    print(f"SEXTO_CHAOS_SEED={seed}")
    return random.Random(seed)
