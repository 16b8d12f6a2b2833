"""A real situation or a drill, named in words: "c'est réel", "just a drill", "pas un exercice".

The first question of an incident is "a real situation or a training drill?", answered with a
button. No intent of the catalogue names either answer, and the engines read "just a drill" as
911 called (0.62) and "it's real" not at all. The dialogues ask `named_mode` at a step whose
buttons are `real` and `drill`, to say which button to press. A negation names the other one
("not a drill" is real, "pas pour vrai" a drill); both or neither named is None. Matching runs
on folded text (no accents, lower case, "isn't" -> "is not").
"""

from __future__ import annotations

import re
from typing import Final, Literal

from nlu.folding import fold

Mode = Literal["real", "drill"]

# Not "no" nor "non": "non, c'est un exercice" answers the question before naming the mode.
_NOT: Final = r"(?:pas|not|never|jamais)"
_ARTICLE: Final = r"(?:(?:un|une|du|de|d|a|an|the|le|la|l|just|juste|only|seulement) )*"
# "un exercice", "une pratique", "a drill", "a test", "training", "une simulation".
_DRILL_WORDS: Final = (
    r"exercices?|pratiques?|practices?|simulations?|formations?|drills?|exercises?|tests?"
    r"|trainings?|mises? en situation|fictif|fictive|fake|pretend|pour pratiquer|for practice"
)
# "réel", "vrai", "pour vrai", "real", "for real", "actual", "genuine", "une vraie situation".
_REAL_WORDS: Final = (
    r"reel|reelle|reels|reelles|vrai|vraie|vrais|vraies|pour de vrai|pour vrai|real|for real"
    r"|actual|genuine|authentique|veritable"
)
_NOT_DRILL: Final = re.compile(rf"\b{_NOT} {_ARTICLE}(?:{_DRILL_WORDS})\b")
_NOT_REAL: Final = re.compile(rf"\b{_NOT} {_ARTICLE}(?:{_REAL_WORDS})\b")
_DRILL: Final = re.compile(rf"\b(?:{_DRILL_WORDS})\b")
_REAL: Final = re.compile(rf"\b(?:{_REAL_WORDS})\b")


def named_mode(text: str) -> Mode | None:
    """The mode ``text`` names, "real" or "drill"; None when it names neither, or both."""
    folded = fold(text)
    real = drill = False
    if _NOT_DRILL.search(folded):
        real, folded = True, _NOT_DRILL.sub(" ", folded)
    if _NOT_REAL.search(folded):
        drill, folded = True, _NOT_REAL.sub(" ", folded)
    real = real or _REAL.search(folded) is not None
    drill = drill or _DRILL.search(folded) is not None
    if real == drill:
        return None
    return "real" if real else "drill"
