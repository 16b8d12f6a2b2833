"""Fixtures of the NLU tests: one embedded model trained per session, in a temporary cache."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from nlu.embedded import DEFAULT_DATA_DIR, EmbeddedInterpreter, IntentModel, load_or_train
from nlu.interpreters import SafeInterpreter

HOLDOUT = DEFAULT_DATA_DIR.parent / "tests" / "holdout.yml"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory shared by the session (never the user's ~/.cache)."""
    return tmp_path_factory.mktemp("nlu-cache")


@pytest.fixture(scope="session")
def intent_model(model_cache: Path) -> IntentModel:
    """The intent model trained from nlu/data once for the whole session."""
    return load_or_train(DEFAULT_DATA_DIR, model_cache)


@pytest.fixture
def embedded(intent_model: IntentModel) -> EmbeddedInterpreter:
    """The embedded engine with the default threshold."""
    return EmbeddedInterpreter(intent_model)


@pytest.fixture
def pipeline(embedded: EmbeddedInterpreter) -> SafeInterpreter:
    """The pipeline the bot uses with the embedded engine."""
    return SafeInterpreter(embedded, familiar=embedded.familiar)


@pytest.fixture
def closed_port_url() -> str:
    """A local URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
