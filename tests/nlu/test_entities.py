"""Event numbers and device counts, in French and English, digits or words."""

from __future__ import annotations

import pytest

from nlu.entities import EntityExtractor, count_alone
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


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("deux", 2),
        ("Trois.", 3),
        ("juste un", 1),
        ("un seul", 1),
        ("une", 1),
        ("only one", 1),
        ("both", 2),
        ("4 cells", 4),
        ("trois téléphones", 3),
        ("12", 12),
        ("aucun", 0),
        ("zéro", 0),
        ("none", 0),
        ("no phones", 0),
        ("pas de cellulaire", 0),
        ("il n'y en a pas", 0),
    ],
)
def test_a_count_typed_alone(text: str, count: int) -> None:
    assert count_alone(text) == count


@pytest.mark.parametrize(
    "text",
    [
        "no",
        "non",
        "pas encore",
        "not yet",
        "pas de problème",
        "deux minutes",
        "un instant",
        "-1",
        "2 ou 3",
        "j'ai mis les 3 cells dans les sacs",
        "beaucoup",
    ],
)
def test_no_count_alone_in_other_answers(text: str) -> None:
    """A "no" or a "not yet" at "how many phones?" does not record none."""
    assert count_alone(text) is None
