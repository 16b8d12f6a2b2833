"""A real situation or a drill named in words, FR/EN, negations naming the other one."""

from __future__ import annotations

import pytest

from nlu.mode import named_mode


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("c'est réel", "real"),
        ("Situation RÉELLE", "real"),
        ("pour vrai", "real"),
        ("oui c'est une vraie situation", "real"),
        ("ce n'est pas un exercice", "real"),
        ("non, pas un exercice", "real"),
        ("it's real", "real"),
        ("for real", "real"),
        ("this isn't a drill", "real"),
        ("no, it is real", "real"),
        ("un exercice", "drill"),
        ("c'est une pratique", "drill"),
        ("on fait un exercice de formation", "drill"),
        ("c'est pas pour vrai", "drill"),
        ("non c'est un test", "drill"),
        ("just a drill", "drill"),
        ("training", "drill"),
        ("it's not real", "drill"),
        ("actually it's a practice", "drill"),
    ],
)
def test_the_mode_named_is_found(text: str, mode: str) -> None:
    assert named_mode(text) == mode


@pytest.mark.parametrize(
    "text",
    ["oui", "yes", "non", "ok", "je sais pas", "really bad", "real drill", "réel ou exercice?"],
)
def test_neither_or_both_named_is_none(text: str) -> None:
    assert named_mode(text) is None
