"""Content integrity: both languages everywhere, every step reachable, nothing dangling."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from dialogues.protocol import ButtonSpec, Protocol, load_protocol, unreachable, validate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def protocol() -> Protocol:
    return load_protocol()


def test_the_shipped_protocol_is_consistent(protocol: Protocol) -> None:
    assert validate(protocol) == []
    assert unreachable(protocol) == set()


def test_every_text_exists_in_french_and_english(protocol: Protocol) -> None:
    for key, by_language in protocol.texts.items():
        assert set(by_language) == {"fr", "en"}, key
        assert by_language["fr"].strip(), key
        assert by_language["en"].strip(), key


def test_every_key_the_code_uses_exists(protocol: Protocol) -> None:
    used: set[str] = set()
    prefixes: set[str] = set()
    for path in [*ROOT.glob("bot/*.py"), *ROOT.glob("dialogues/*.py")]:
        source = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"""text\(\s*"([a-z0-9_.]+)\"""", source))
        prefixes |= set(re.findall(r"""text\(\s*f"([a-z0-9_.]+)\{""", source))
    assert used, "the scan found no keys at all"
    missing = sorted(k for k in used if k not in protocol.texts)
    assert missing == []
    for prefix in prefixes:
        assert any(key.startswith(prefix) for key in protocol.texts), prefix


def test_validation_catches_a_missing_language(protocol: Protocol) -> None:
    texts = dict(protocol.texts)
    texts["never.ok"] = {"fr": "Compris"}
    assert "text never.ok: missing in en" in validate(replace(protocol, texts=texts))


def test_validation_catches_placeholders_that_differ(protocol: Protocol) -> None:
    texts = dict(protocol.texts)
    texts["event.recorded"] = {"fr": "Numéro {number}", "en": "Number {numbr}"}
    problems = validate(replace(protocol, texts=texts))
    assert any(p.startswith("text event.recorded: placeholders differ") for p in problems)


def test_validation_catches_dangling_and_unreachable_steps(protocol: Protocol) -> None:
    steps = dict(protocol.steps)
    never = steps["never"]
    steps["never"] = replace(never, buttons=(ButtonSpec("ok", "never.ok", "nowhere"),))
    problems = validate(replace(protocol, steps=steps))
    assert "step never: goes to unknown step nowhere" in problems
    assert "step victim: unreachable" in problems


def test_validation_catches_unknown_actions(protocol: Protocol) -> None:
    steps = dict(protocol.steps)
    steps["grid"] = replace(
        steps["grid"], buttons=(ButtonSpec("done", "grid.done", "call911", ("teleport",)),)
    )
    assert "step grid: unknown action teleport" in validate(replace(protocol, steps=steps))


@pytest.mark.parametrize(
    ("language", "words"),
    [
        (
            "en",
            ["look at", "screenshot", "forward", "AirDrop", "delete", "unlock", "give a phone"],
        ),
        (
            "fr",
            ["regarder", "capture d'écran", "transférer", "AirDrop", "supprimer", "déverrouiller"],
        ),
    ],
)
def test_the_never_list_says_every_prohibition(
    protocol: Protocol, language: str, words: list[str]
) -> None:
    text = protocol.text("never.text", language)
    for word in words:
        assert word in text, word
    assert "163.1" in text
    assert "162.1" in text


@pytest.mark.parametrize(
    "kit_only",
    ["airplane", "mode avion", "power off", "switch off", "éteign", "sign the bag", "signez"],
)
def test_kit_only_instructions_are_not_invented(protocol: Protocol, kit_only: str) -> None:
    for by_language in protocol.texts.values():
        for text in by_language.values():
            assert kit_only not in text.lower()
    assert "aide-mémoire" in protocol.text("devices.text", "en")
    assert "aide-mémoire" in protocol.text("after.text", "fr")


def test_every_message_fits_in_a_telegram_message(protocol: Protocol) -> None:
    for key, by_language in protocol.texts.items():
        for language, text in by_language.items():
            assert len(text) < 3500, (key, language)


def test_every_intent_the_guide_answers_is_in_the_training_data() -> None:
    from dialogues.engine import ANSWERED
    from nlu.training_data import load_training_data
    from nlu.types import INTENTS

    files = sorted((ROOT / "nlu" / "data").glob("*.yml"))
    trained = {example.intent for example in load_training_data(files).examples}
    handled = set(ANSWERED) | {
        "emergency",
        "start_incident",
        "ask_next_step",
        "confirm_911_called",
        "confirm_devices_secured",
        "confirm_kit_collected",
    }
    assert handled <= trained
    assert set(INTENTS) <= handled  # every intent of the contract gets an answer


def test_every_answered_intent_has_its_text(protocol: Protocol) -> None:
    from dialogues.engine import ANSWERED

    for intent in ANSWERED:
        assert f"answer.{intent}" in protocol.texts
