"""A 911 call that did not go through, in FR/EN: busy, cut off, unanswered; being busy is not."""

from __future__ import annotations

import pytest

from nlu.call import call_failed


@pytest.mark.parametrize(
    "text",
    [
        "la ligne du 911 sonne occupé",
        "le 911 est occupé",
        "j'ai appelé le 911 mais ça a coupé",
        "j'ai appelé le 911 mais personne répond",
        "le 911 répond pas",
        "pas réussi à joindre le 911",
        "j'arrive pas à avoir le 911",
        "l'appel arrête pas de couper",
        "I called 911 but the call dropped",
        "the line was busy",
        "I keep getting a busy signal",
        "911 isn't answering",
        "couldn't get through to 911 yet",
        "haven't managed to reach 911 yet",
        "the call keeps dropping",
        "called the police, they hung up on me",
    ],
)
def test_a_failed_call_to_911_is_found_at_any_step(text: str) -> None:
    assert call_failed(text)


@pytest.mark.parametrize(
    "text",
    [
        "j'ai appelé, c'était occupé",
        "ils m'ont raccroché au nez",
        "ça arrête pas de couper",
        "pas de réseau dans le bureau",
        "personne répond",
        "called, no answer",
        "nobody picked up",
        "it's busy",
        "tried calling but it cut off",
        "got disconnected",
        "j'ai essayé d'appeler mais rien",
    ],
)
def test_a_failed_call_not_naming_911_is_found_where_it_is_the_call(text: str) -> None:
    """At the step that asks for the call: the call meant is 911's. Elsewhere it may not be."""
    assert call_failed(text, calling=True)
    assert not call_failed(text)


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
    assert not call_failed(text, calling=True)


def test_an_unanswered_call_to_someone_else_is_no_failed_call_to_911() -> None:
    assert not call_failed("j'ai appelé les parents, pas de réponse")
    assert not call_failed("I called his mom, no answer")
    assert not call_failed("called 911, no answer from the school officer though", calling=True)
    assert not call_failed("appelé le 911, pas de réponse de la direction", calling=True)
    assert call_failed("appelé, pas de réponse du 911")


@pytest.mark.parametrize(
    "text",
    [
        "c'était occupé mais finalement j'ai eu le 911",
        "the line was busy but I finally got through",
        "ça a coupé, j'ai rappelé pis j'ai fini par avoir quelqu'un",
    ],
)
def test_a_call_that_went_through_in_the_end_did_not_fail(text: str) -> None:
    assert not call_failed(text, calling=True)
