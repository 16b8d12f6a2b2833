"""The `nlu` command group: evaluate (table and JSON), compare, parse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nlu.cli import nlu
from nlu.types import CONFIRM_INTENTS

SMALL_SET = """
version: "3.1"
nlu:
- intent: emergency
  examples: |
    - elle dit qu'elle veut mourir
    - he says he'll post her pics unless she pays
- intent: confirm_911_called
  examples: |
    - j'ai appelé le 911, no [2026-123456](event_number)
- intent: deny
  examples: |
    - j'ai pas encore appelé le 911
- intent: ask_call_911
  examples: |
    - should I call 911?
- intent: thank
  examples: |
    - merci beaucoup
"""


@pytest.fixture
def small_set(tmp_path: Path) -> Path:
    """A tiny labelled file."""
    path = tmp_path / "set.yml"
    path.write_text(SMALL_SET, encoding="utf-8")
    return path


def test_evaluate_json_is_one_object(small_set: Path, model_cache: Path) -> None:
    result = CliRunner().invoke(
        nlu, ["evaluate", str(small_set), "--json", "--cache-dir", str(model_cache)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # fails if anything else is printed on stdout
    assert report["engine"] == "embedded"
    assert report["examples"] == 6
    assert 0.0 <= report["accuracy"] <= 1.0
    assert report["emergency_recall"] == 1.0
    assert set(report["confirm_precision"]) == set(CONFIRM_INTENTS)
    assert report["intents"]["emergency"]["support"] == 2
    assert report["latency_median_ms"] > 0.0
    assert {"macro_f1", "confusions", "misses", "latency_p95_ms"} <= set(report)


def test_evaluate_table(small_set: Path, model_cache: Path) -> None:
    result = CliRunner().invoke(nlu, ["evaluate", str(small_set), "--cache-dir", str(model_cache)])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout
    assert "emergency recall 1.00" in result.stdout


def test_evaluate_rasa_without_server_says_so(
    small_set: Path, model_cache: Path, closed_port_url: str
) -> None:
    result = CliRunner().invoke(
        nlu,
        ["evaluate", str(small_set), "--engine", "rasa", "--rasa-url", closed_port_url, "--json"],
    )
    assert result.exit_code != 0
    assert result.stdout == ""
    assert "make rasa-start" in result.stderr


def test_compare_without_rasa_shows_embedded_only(
    small_set: Path, model_cache: Path, closed_port_url: str
) -> None:
    result = CliRunner().invoke(
        nlu,
        [
            "compare",
            str(small_set),
            "--rasa-url",
            closed_port_url,
            "--cache-dir",
            str(model_cache),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "no server answers" in result.stdout
    assert "embedded" in result.stdout


def test_parse_prints_json(model_cache: Path) -> None:
    result = CliRunner().invoke(
        nlu, ["parse", "--cache-dir", str(model_cache), "les", "3", "cells", "sont", "ensachés"]
    )
    assert result.exit_code == 0, result.output
    parse = json.loads(result.stdout)
    assert parse["intent"] == "confirm_devices_secured"
    assert parse["entities"][0]["value"] == "3"


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"nlu: [\n", "not valid YAML, line 2 column 1"),
        (b"- intent: greet\n", "not a Rasa NLU file"),
        (b"\xff\xfe\x00n\x00l\x00u", "not UTF-8 text"),
        (b"nlu:\n- intent: greet\n  examples: hello\n", "example does not start with '- '"),
    ],
)
def test_a_file_that_cannot_be_read_is_a_clear_error(
    tmp_path: Path, model_cache: Path, content: bytes, said: str
) -> None:
    """A malformed file is named with what is wrong with it, not a traceback."""
    path = tmp_path / "broken.yml"
    path.write_bytes(content)
    for command in ("evaluate", "compare"):
        result = CliRunner().invoke(nlu, [command, str(path), "--cache-dir", str(model_cache)])
        assert result.exit_code == 1, result.output
        assert f"Error: {path}: " in result.output
        assert said in result.output
        assert "Traceback" not in result.output


def test_intents_outside_the_catalogue_are_pointed_out(tmp_path: Path, model_cache: Path) -> None:
    """A label that is not an intent of the catalogue (a typo, say) can never be predicted: the
    evaluation still runs and says so on stderr, the JSON on stdout staying one object."""
    path = tmp_path / "typo.yml"
    path.write_text(
        "nlu:\n- intent: ask_call911\n  examples: |\n    - should I call 911?\n    - do I call"
        " the police?\n- intent: thank\n  examples: |\n    - merci beaucoup\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        nlu, ["evaluate", str(path), "--json", "--cache-dir", str(model_cache)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["examples"] == 3
    assert "2 example(s)" in result.stderr
    assert "not in the catalogue" in result.stderr
    assert "ask_call911" in result.stderr
