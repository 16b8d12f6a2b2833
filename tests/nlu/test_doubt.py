"""Doubt voiced as an answer is recognised in FR/EN, and a plain yes or no is not doubt."""

from __future__ import annotations

import pytest

from nlu.doubt import only_filler, voices_doubt


@pytest.mark.parametrize(
    "text",
    [
        "je sais pas",
        "Je ne sais pas",
        "j'sais pas trop",
        "euh je sais pas trop",
        "je sais pu",
        "chais pas",
        "jsp",
        "pas sûr",
        "Pas certaine",
        "pas vraiment sûre",
        "PEUT-ÊTRE",
        "ptêt",
        "aucune idée",
        "difficile à dire",
        "ça se peut",
        "not sure",
        "Not really sure",
        "I'm not 100% sure",
        "unsure",
        "idk",
        "IDK",
        "dunno",
        "I don't know",
        "i dont know",
        "no idea",
        "maybe",
        "perhaps",
        "hard to say",
        "could be",
        "je sais pas si c'est grave",
        "not sure if it counts",
        "euh",
        "Euuuh...",
        "hmm",
        "HMMM?",
        "um",
        "bof",
        "euh, ben…",
    ],
)
def test_doubt_is_recognised(text: str) -> None:
    assert voices_doubt(text)


@pytest.mark.parametrize(
    "text",
    [
        "non",
        "no",
        "nope",
        "oui",
        "yes",
        "sure",
        "I'm sure",
        "je suis sûre",
        "c'est sûr",
        "sûrement pas",
        "certain",
        "je sais",
        "I know",
        "personne est en danger",
        "no one is in danger",
        "pas de danger",
        "pas du tout",
        "not at all",
        "je sais pas quoi faire",
        "je sais pas trop quoi faire",
        "I don't really know what to do",
        "je sais pas comment les mettre dans les sacs",
        "pas sûr de quoi faire",
        "I don't know what to do",
        "not sure how to bag the phones",
        "no idea where the kit is",
        "hein?",
        "huh?",
        "mhm",
        "mm-hmm",
        "uh-huh",
        "euh oui",
        "hmm non",
    ],
)
def test_a_plain_answer_is_not_doubt(text: str) -> None:
    assert not voices_doubt(text)


@pytest.mark.parametrize(
    "text",
    [
        "euh",
        "EUH...",
        "heu",
        "hum",
        "hmm",
        "mmm",
        "uh",
        "um",
        "erm",
        "ben",
        "bof",
        "ah",
        "oh",
        "hein?",
        "huh?",
        "euh… hein?",
        "hmm hmm",
    ],
)
def test_hesitation_and_puzzlement_alone_are_filler(text: str) -> None:
    assert only_filler(text)


@pytest.mark.parametrize(
    "text",
    [
        "mhm",
        "mm-hmm",
        "mm hmm",
        "uh-huh",
        "euh oui",
        "hmm ok",
        "ben non",
        "ok",
        "oui",
        "non",
        "eh bien",
        "ah ok",
        "911",
        "uh the phones are bagged",
    ],
)
def test_words_with_a_meaning_are_not_filler(text: str) -> None:
    """A yes in sounds ("mm-hmm") and a hesitation before an answer keep their reading."""
    assert not only_filler(text)
