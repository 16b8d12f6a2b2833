"""A 911 call that did not go through, in FR/EN: busy, cut off, unanswered; being busy is not."""

from __future__ import annotations

import pytest

from nlu.call import call_failed


@pytest.mark.parametrize(
    "text",
    [
        "j'ai appelé le 911 mais ça a coupé",
        "j'ai appelé, c'était occupé",
        "la ligne du 911 sonne occupé",
        "le 911 est occupé",
        "j'ai appelé le 911 mais personne répond",
        "le 911 répond pas",
        "pas réussi à joindre le 911",
        "ils m'ont raccroché au nez",
        "j'arrive pas à avoir le 911",
        "ça arrête pas de couper",
        "pas de réseau dans le bureau",
        "I called 911 but the call dropped",
        "the line was busy",
        "I keep getting a busy signal",
        "called 911, no answer",
        "nobody picked up",
        "911 isn't answering",
        "couldn't get through to 911 yet",
        "haven't managed to reach 911 yet",
        "got disconnected",
        "the call keeps dropping",
    ],
)
def test_a_failed_call_is_found(text: str) -> None:
    assert call_failed(text)


@pytest.mark.parametrize(
    "text",
    [
        "j'ai appelé le 911",
        "I called 911, police are on the way",
        "pas encore",
        "not yet",
        "je suis occupée avec l'élève",
        "c'est occupé ici, beaucoup d'élèves",
        "I was busy with the victim",
        "elle s'est coupée",
        "il a coupé la photo",
        "the kid cut himself",
        "she's not answering my questions",
        "l'élève répond pas à mes questions",
        "he cut off contact with her",
        "j'arrive pas à la calmer",
        "he keeps cutting class",
    ],
)
def test_being_busy_hurt_or_unanswered_by_a_student_is_no_failed_call(text: str) -> None:
    assert not call_failed(text)
