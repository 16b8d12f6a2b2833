"""Event numbers and device counts, in French and English, digits or words."""

from __future__ import annotations

import pytest

from nlu.entities import EntityExtractor
from nlu.types import DEVICE_COUNT, EVENT_NUMBER


def values(text: str) -> list[tuple[str, str, str]]:
    """(name, value, covered text) of every entity found."""
    return [(e.name, e.value, text[e.start : e.end]) for e in EntityExtractor().extract(text)]


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("j'ai appelé, no d'événement 2026-104522", "2026-104522"),
        ("évènement: 26-083311", "26-083311"),
        ("our event number is 123456789", "123456789"),
        ("le numéro de dossier c'est le 2026 118734", "2026 118734"),
        ("911 called, file #55123", "55123"),
    ],
)
def test_event_numbers(text: str, number: str) -> None:
    assert values(text) == [(EVENT_NUMBER, number, number)]


@pytest.mark.parametrize(
    "text",
    [
        "j'ai appelé le 911",
        "Tel-jeunes: 1 800 263-2266",
        "call back at 514-555-1234",
        "il est 14h30",
    ],
)
def test_no_event_number_in_ordinary_numbers(text: str) -> None:
    assert [v for v in values(text) if v[0] == EVENT_NUMBER] == []


@pytest.mark.parametrize(
    ("text", "count", "covered"),
    [
        ("j'ai mis les 3 cells dans les sacs", "3", "3"),
        ("les DEUX téléphones sont confisqués", "2", "DEUX"),
        ("I bagged both phones", "2", "both"),
        ("on a saisi trois cellulaires", "3", "trois"),
        ("five phones are sealed", "5", "five"),
        ("j'ai dix tel dans la trousse", "10", "dix"),
        ("2 autres cells", "2", "2"),
    ],
)
def test_device_counts(text: str, count: str, covered: str) -> None:
    assert values(text) == [(DEVICE_COUNT, count, covered)]


def test_count_of_students_is_not_a_device_count() -> None:
    assert values("5 élèves et 4 téléphones") == [(DEVICE_COUNT, "4", "4")]
    assert values("j'ai 12 élèves dans mon bureau") == []
