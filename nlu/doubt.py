"""Doubt voiced as an answer: "je sais pas", "pas sûr", "not sure", "idk", "maybe", "euh".

No intent of the catalogue means "I am not sure", and the engines read these messages as a no
("je sais pas" deny 0.71, "not sure" 0.61, "pas sûr" 0.80), a yes ("idk" affirm 0.50) or a
question on something else ("peut-être" ask_legal 0.62). At the danger question, the answer to a
no is "Noted. To go on, press No immediate danger", which a doubt must not get. The dialogues
ask `voices_doubt` where a step has an answer for it. Matching runs on folded text (no
accents, lower case, "don't" -> "do not").

A message of nothing but hesitation sounds ("euh", "hmm", "um", "ben", "bof") or puzzlement
("hein?", "huh?", "ah") is no intent of the catalogue either: the engines read "euh", "uh",
"ah", "ben" and "huh?" as a yes (0.58 to 0.87) and "mmm" as an image received. `only_filler`
tells the pipeline to leave such a message not understood; hesitation alone is a doubt.
"""

from __future__ import annotations

import re
from typing import Final

from nlu.folding import fold

_DOUBT: Final = re.compile(
    r"\b(?:"
    # French: "je sais pas", "j'sais pas trop", "chais pas", "jsp", "je sais pu"
    r"(?:je |j )?(?:ne |n )?sais (?:pas|plus|pu|trop)|chais pas|jsp|j sais pas"
    # "pas sûr", "pas vraiment certaine", "incertain", "aucune idée", "peut-être", "ptêt"
    r"|pas (?:trop |vraiment |tout a fait |tres |si )?(?:sure?s?|certaine?s?)"
    r"|incertaine?s?|aucune idee|peut etre|ptet|pe etre|possiblement"
    r"|difficile a (?:dire|savoir)|dur a dire|ca se peut"
    # English: "not sure", "unsure", "idk", "dunno", "I do not know", "no idea", "maybe"
    r"|not (?:really |quite |totally |completely |100 ?% )?(?:sure|certain)|unsure|uncertain"
    r"|idk|dunno|i do not know|i dont know|do not really know|no idea|no clue"
    r"|maybe|perhaps|possibly"
    r"|hard to (?:say|tell)|can not tell|could be"
    # Not a doubt about the answer but about what to do: "je sais pas quoi faire", "not sure
    # how to bag it" (a question, for the engines); "je sais pas si…" stays a doubt.
    r")\b(?! (?:trop |vraiment )?(?:de |d )?"
    r"(?:quoi|comment|ou|quand|qui|pourquoi|combien|quel|quelle|quels)\b)"
    r"(?! (?:really |exactly )?(?:of |about )?(?:what|how|where|when|who|whom|which|why)\b)"
)


# Hesitation: "euh", "heu", "hum", "hmm", "mmm", "uh", "um", "uhm", "er", "erm", "ben", "bah",
# "bof", "meh", each letter possibly held ("euuuh", "hmmmm"; folding keeps one of three alike).
_HESITATION: Final = r"e+u+h+|h+e+u+h*|h+u+m+|h*m+|u+h+m*|u+m+|e+r+m*|b+e+n+|b+a+h+|b+o+f+|m+e+h+"
# Puzzlement or a bare exclamation: "hein", "huh", "ah", "oh", "eh".
_PUZZLEMENT: Final = r"h+e+i+n+|h+u+h+|a+h+|o+h+|e+h+"
_SEPARATOR: Final = r"[\s.,;:!?…]*"
_HESITATING: Final = re.compile(rf"(?:(?:{_HESITATION}){_SEPARATOR})+")
_FILLER: Final = re.compile(rf"(?:(?:{_HESITATION}|{_PUZZLEMENT}){_SEPARATOR})+")
# A yes in sounds, which the hesitations above would otherwise take: "mm-hmm", "mhm", "uh-huh".
_YES_SOUND: Final = re.compile(rf"(?:m+ ?h+m+|u+h+ ?h+u+h+){_SEPARATOR}")


def voices_doubt(text: str) -> bool:
    """Whether ``text`` says its writer does not know or is not sure, or only hesitates."""
    folded = fold(text).strip()
    if _DOUBT.search(folded) is not None:
        return True
    return _HESITATING.fullmatch(folded) is not None and not _YES_SOUND.fullmatch(folded)


def only_filler(text: str) -> bool:
    """Whether ``text`` is nothing but hesitation or puzzlement ("euh", "hmm…", "hein?")."""
    folded = fold(text).strip()
    return _FILLER.fullmatch(folded) is not None and not _YES_SOUND.fullmatch(folded)
