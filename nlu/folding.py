"""Text folding shared by the engine and the safety net: accents, case, stretched letters,
words spelled out."""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'"})
_NEGATIONS = {"ca": "can", "wo": "will", "ai": "is"}
# "don't" and "dont" alike, except French "dont" ("whose") which keeps its meaning.
_NOT_CONTRACTION = re.compile(
    r"\b(ca|wo|ai|do|does|did|is|are|was|were|has|have|had|could|would|should|must)n't\b"
    r"|\b(ca|does|did|is|are|was|were|has|have|had|could|would|should|must)nt\b"
)
_STRETCHED = re.compile(r"([^\W\d])\1{2,}")
_REPEATED_MARKS = re.compile(r"([?!.])\1+")
_SEPARATORS = re.compile(r"['\-_/]+")
_SPACES = re.compile(r"\s+")
# A letter of any alphabet (not a digit, not "_").
LETTER = re.compile(r"[^\W\d_]")
# A French elision typed without its apostrophe: "jai", "sest", "cest", "cetait".
_NO_APOSTROPHE = re.compile(r"\b(j(?=ai\b)|[sc](?=(?:est|etait)\b))")
# Words spelled out or dictated, as one word: "9-1-1", "neuf un un", "nine one one" -> "911";
# "D.P.J.", "d p j", "dé pé ji" -> "dpj".
_SPELLED: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b9\. ?1\. ?1\b\.?|\b(?:9|neuf|nine) ?(?:1|un|one) ?(?:1|un|one)\b"), "911"),
    (re.compile(r"\bd\. ?p\. ?j\b\.?|\bd ?p ?j\b|\bde ?pe ?j(?:i|e)?\b"), "dpj"),
)


# The emoji people answer a chat with, as the words they stand for (both languages read "ok";
# "merci" and "bonjour" are how thanks and greetings are said here); skin tones and the emoji
# presentation selector are dropped first ("👍🏽", "✔️").
_EMOJI_WORDS = {
    "👍": "ok",
    "👌": "ok",
    "✅": "ok",
    "✔": "ok",
    "☑": "ok",
    "👎": "non",
    "❌": "non",
    "🙏": "merci",
    "👋": "bonjour",
}
_EMOJI = re.compile("|".join(map(re.escape, _EMOJI_WORDS)))
_EMOJI_MODIFIERS = re.compile("[\U0001f3fb-\U0001f3ff\ufe0f]")


def emoji_as_words(text: str) -> str:
    """A message with its answering emoji written as words: "👍" -> "ok", "merci🙏🏻" -> "merci
    merci" (a message of emoji alone was not understood: it has no letter). What the engines
    read, so the entities they find are placed in it."""
    if not _EMOJI.search(text):
        return text
    worded = _EMOJI.sub(lambda m: f" {_EMOJI_WORDS[m.group()]} ", _EMOJI_MODIFIERS.sub("", text))
    return _SPACES.sub(" ", worded).strip()


def strip_accents(text: str) -> str:
    """Remove diacritics ("élève" -> "eleve"); the string keeps one character per letter."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _expand_not(match: re.Match[str]) -> str:
    """Expand "can't", "dont", "won't" to "can not", "do not", "will not"."""
    stem = match.group(1) or match.group(2)
    return f"{_NEGATIONS.get(stem, stem)} not"


def fold(text: str) -> str:
    """Fold a message for matching: lower case, no accents, letters unstretched, words apart.

    "J'ai CALLÉ le 911!!!" -> "j ai calle le 911!"; "nonnnn" -> "non"; "don't" -> "do not";
    "le neuf-un-un" -> "le 911"; "la D.P.J." -> "la dpj"; "il sest coupé" -> "il s est coupe".
    """
    folded = strip_accents(text.translate(_APOSTROPHES)).lower()
    folded = _NOT_CONTRACTION.sub(_expand_not, folded)
    folded = _STRETCHED.sub(r"\1", folded)
    folded = _REPEATED_MARKS.sub(r"\1", folded)
    folded = _SEPARATORS.sub(" ", folded)
    folded = _NO_APOSTROPHE.sub(r"\1 ", folded)
    folded = _SPACES.sub(" ", folded).strip()
    for spelled, word in _SPELLED:
        folded = spelled.sub(word, folded)
    return folded
