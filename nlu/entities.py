"""Rule-based extraction of the 911 event number and the number of devices."""

from __future__ import annotations

import re
from typing import Final

from nlu.folding import fold
from nlu.types import DEVICE_COUNT, EVENT_NUMBER, Entity

NUMBER_WORDS: Final[dict[str, str]] = {
    "une seule": "1",
    "un seul": "1",
    "one": "1",
    "deux": "2",
    "two": "2",
    "both": "2",
    "trois": "3",
    "three": "3",
    "quatre": "4",
    "four": "4",
    "cinq": "5",
    "five": "5",
    "six": "6",
    "sept": "7",
    "seven": "7",
    "huit": "8",
    "eight": "8",
    "neuf": "9",
    "nine": "9",
    "dix": "10",
    "ten": "10",
}

_DEVICE_NOUN = (
    r"(?:cell(?:ulaire|phone)?s?|cel+s?|t[ée]l[ée]phones?|t[ée]l[ée]s?|tels?|phones?"
    r"|smartphones?|iphones?|samsungs?|androids?|appareils?|devices?|portables?|mobiles?"
    r"|ipads?|tablettes?|tablets?|sacs?|bags?)"
)
_NUMBER_WORDS = "|".join(sorted(map(re.escape, NUMBER_WORDS), key=len, reverse=True))
_COUNT = rf"(?P<count>\d{{1,2}}|{_NUMBER_WORDS})"
# A count, then at most two words ("3 autres cells", "two more phones"), then a device noun.
_DEVICE_COUNT = re.compile(
    rf"(?<![\w-]){_COUNT}(?:\s+[^\W\d]+){{0,2}}?\s+{_DEVICE_NOUN}\b", re.IGNORECASE
)
# 2026-104522, 26-083311: the usual shape of a 911 event number, anywhere.
_EVENT_SHAPE = re.compile(r"(?<![\d-])(?P<number>(?:19|20)?\d{2}-\d{4,8})(?![\d-])")
# A police-style number typed alone, letters glued to its digits ("EV-1", "SQ26"): a number,
# however short, where "ok 10-4" is a sentence. Such a message asks nothing (the guard of
# nlu.interpreters), and at the step that asks for it, it is the event number (dialogues).
PREFIXED_NUMBER: Final = re.compile(r"^[A-Za-z]{1,5}[-#_.]?\d[A-Za-z0-9/_.#-]*$")
# A long number right after a word that names it ("numéro d'événement: 123456789").
_EVENT_NAMED = re.compile(
    r"(?:[ée]v[ée]nement|[ée]v[èe]nement|event|dossier|file|incident|num[ée]ro|number|no\.?|#)"
    r"[^\d\n]{0,25}?(?P<number>\d[\d -]{3,14}\d)(?!\d)",
    re.IGNORECASE,
)

# A count typed alone, where the question is "how many phones?": "deux", "juste un", "3 cells",
# "aucun", "none", "y en a pas". Alone, "un" and "une" are one (in a sentence, an article).
_NONE_ALONE = (
    rf"(?:aucune?|zero|none)(?: {_DEVICE_NOUN})?|(?:no|pas de) {_DEVICE_NOUN}|nothing|rien"
    r"|(?:il )?(?:n )?y en a (?:pas|aucun)|there (?:are|is) none|0"
)
_COUNT_ALONE: Final = re.compile(
    r"(?:(?:juste|seulement|only|just) )?"
    rf"(?P<count>\d{{1,3}}|un|une|{_NUMBER_WORDS})"
    rf"(?: (?:seule?s?|only))?(?: {_DEVICE_NOUN})?(?: (?:seule?s?|only))?"
    rf"|(?P<none>{_NONE_ALONE})"
)

_NOT_IN_A_COUNT: Final = re.compile(r"[^\w\s'’.!]")


def count_alone(text: str) -> int | None:
    """The number of devices a message gives, when that is all it says; else None.

    "deux", "juste un", "3 cells", "aucun", "none", "0"; not "pas encore" nor "deux minutes".
    """
    if _NOT_IN_A_COUNT.search(text):  # "-1", "2+", "1/2"
        return None
    folded = fold(text).strip(" .!")
    match = _COUNT_ALONE.fullmatch(folded)
    if match is None:
        return None
    if match["none"] is not None:
        return 0
    count = match["count"]
    if count.isdecimal():
        return int(count)
    return int(NUMBER_WORDS.get(count, "1"))


class EntityExtractor:
    """Finds event_number and device_count in a message (values normalised to digits)."""

    def extract(self, text: str) -> tuple[Entity, ...]:
        """Return the entities of a message, in order of position."""
        found = [*self._event_numbers(text), *self._device_counts(text)]
        return tuple(sorted(found, key=lambda e: (e.start, e.name)))

    def _event_numbers(self, text: str) -> list[Entity]:
        """Event numbers: the 2026-123456 shape anywhere, or a long number that is named."""
        spans: dict[tuple[int, int], str] = {}
        for pattern in (_EVENT_SHAPE, _EVENT_NAMED):
            for match in pattern.finditer(text):
                number = match["number"].strip()
                digits = re.sub(r"\D", "", number)
                if len(digits) < 5 or digits == "911":
                    continue
                start = match.start("number")
                if not any(s <= start < e for s, e in spans):
                    spans[(start, start + len(number))] = number
        return [Entity(EVENT_NUMBER, value, s, e) for (s, e), value in spans.items()]

    def _device_counts(self, text: str) -> list[Entity]:
        """A small count (digits or FR/EN words up to ten) followed by a device noun."""
        entities = []
        for match in _DEVICE_COUNT.finditer(text):
            raw = match["count"]
            value = NUMBER_WORDS.get(raw.lower(), raw.lstrip("0") or "0")
            if raw.isdecimal() and not 1 <= int(raw) <= 50:
                continue
            entities.append(Entity(DEVICE_COUNT, value, match.start("count"), match.end("count")))
        return entities
