"""The Rasa-format reader, and the shape of the project's own training and test data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from nlu.embedded import DEFAULT_DATA_DIR
from nlu.folding import fold
from nlu.training_data import (
    TrainingDataError,
    data_files,
    load_training_data,
    parse_example,
)
from nlu.types import DEVICE_COUNT, ENTITY_NAMES, EVENT_NUMBER, INTENTS, Entity
from tests.nlu.conftest import HOLDOUT

NLU_DIR = DEFAULT_DATA_DIR.parent


def test_plain_example_has_no_entities() -> None:
    example = parse_example("j'ai appelé le 911")
    assert example.text == "j'ai appelé le 911"
    assert example.entities == ()


def test_entity_markup_gives_clean_text_and_span() -> None:
    example = parse_example("no d'événement [2026-104522](event_number) merci")
    assert example.text == "no d'événement 2026-104522 merci"
    (entity,) = example.entities
    assert entity == Entity(EVENT_NUMBER, "2026-104522", 15, 26)
    assert example.text[entity.start : entity.end] == "2026-104522"


def test_json_markup_value_and_synonyms() -> None:
    example = parse_example(
        'les [deux]{"entity": "device_count", "value": "2"} cells et [3](device_count) tel'
    )
    assert example.text == "les deux cells et 3 tel"
    assert [(e.name, e.value, example.text[e.start : e.end]) for e in example.entities] == [
        (DEVICE_COUNT, "2", "deux"),
        (DEVICE_COUNT, "3", "3"),
    ]
    with_synonym = parse_example("[trois](device_count) cells", {"trois": "3"})
    assert with_synonym.entities[0].value == "3"


def test_short_synonym_markup() -> None:
    example = parse_example("[two](device_count:2) phones")
    assert example.entities == (Entity(DEVICE_COUNT, "2", 0, 3),)


def test_bad_json_markup_is_an_error() -> None:
    with pytest.raises(TrainingDataError):
        parse_example('[x]{"entity": }')


def test_loader_reads_every_kind_of_section(tmp_path: Path) -> None:
    path = tmp_path / "nlu.yml"
    path.write_text(
        """
version: "3.1"
nlu:
- intent: confirm_devices_secured
  examples: |
    - j'ai mis les [quatre]{"entity": "device_count", "value": "4"} cells dans les sacs
    - [cinq](device_count) phones bagged
- intent: greet
  examples:
  - text: bonjour
  - text: hi
- synonym: "5"
  examples: |
    - cinq
- regex: event_number
  examples: |
    - \\d{2}-\\d{6}
- lookup: device
  examples: |
    - cell
    - phone
""",
        encoding="utf-8",
    )
    data = load_training_data([path])
    assert data.intents == ("confirm_devices_secured", "greet")
    assert [e.text for e in data.by_intent("greet")] == ["bonjour", "hi"]
    first, second = data.by_intent("confirm_devices_secured")
    assert first.entities[0].value == "4"
    assert second.text == "cinq phones bagged"
    assert second.entities[0].value == "5"  # from the synonym section, read after it
    assert data.synonyms["quatre"] == "4"
    assert data.regexes["event_number"] == ("\\d{2}-\\d{6}",)
    assert data.lookups["device"] == ("cell", "phone")


def test_loader_rejects_examples_without_dash(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("nlu:\n- intent: greet\n  examples: |\n    bonjour\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="does not start"):
        load_training_data([path])


def test_every_intent_has_at_least_40_training_examples() -> None:
    data = load_training_data(data_files(DEFAULT_DATA_DIR))
    counts = Counter(e.intent for e in data.examples)
    assert set(counts) == set(INTENTS)
    assert min(counts.values()) >= 40, counts.most_common()[-3:]


def test_training_entities_are_known_and_spans_match() -> None:
    data = load_training_data(data_files(DEFAULT_DATA_DIR))
    entities = [(e, x) for e in data.examples for x in e.entities]
    assert {x.name for _, x in entities} == set(ENTITY_NAMES)
    for example, entity in entities:
        assert 0 <= entity.start < entity.end <= len(example.text)
        if entity.name == DEVICE_COUNT:
            assert entity.value.isdigit(), example.text


def test_holdout_has_15_per_intent_and_never_repeats_training() -> None:
    training = load_training_data(data_files(DEFAULT_DATA_DIR))
    holdout = load_training_data([HOLDOUT])
    assert min(Counter(e.intent for e in holdout.examples).values()) >= 15
    assert set(holdout.intents) == set(INTENTS)
    seen = {fold(e.text).strip("?!. ") for e in training.examples}
    repeated = [e.text for e in holdout.examples if fold(e.text).strip("?!. ") in seen]
    assert repeated == []


def test_domain_lists_the_catalogue() -> None:
    domain = yaml.safe_load((NLU_DIR / "domain.yml").read_text(encoding="utf-8"))
    assert tuple(domain["intents"]) == INTENTS
    assert tuple(domain["entities"]) == ENTITY_NAMES


def test_rasa_config_uses_the_same_threshold() -> None:
    config = yaml.safe_load((NLU_DIR / "config.yml").read_text(encoding="utf-8"))
    fallback = next(c for c in config["pipeline"] if c["name"] == "FallbackClassifier")
    assert fallback["threshold"] == 0.4
