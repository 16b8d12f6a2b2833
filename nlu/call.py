"""A call to 911 that did not go through: "ça sonne occupé", "l'appel a coupé", "no answer".

No intent of the catalogue says a call failed, and the engines read "I called 911 but the call
dropped" (0.83) and "j'ai appelé, c'était occupé" (0.72) as 911 called, "j'ai appelé le 911
mais personne répond" as a question on calling (0.74) and "tried calling but it cut off" as a
not-yet ("OK. When it is done, press the button"). The answer to all of them is to call again
at once. The dialogues ask `call_failed` while an incident's 911 call is not recorded, and the
confirmation guard (`nlu.interpreters`) of every message an engine read as 911 called. Matching
runs on folded text (no accents, lower case, "couldn't" -> "could not").

Some words name a failed call whatever else is said ("la ligne est occupée", "the call
dropped", "couldn't get through"). Others could be about anyone ("pas de réponse", "ils m'ont
raccroché au nez", "it's busy", "nobody answered"): "j'ai appelé les parents, pas de réponse"
is no failed call to 911. Those count only where the call to 911 is what is being done (the
step that asks for it, the emergency) or where the message names 911 or the police. Being busy
oneself is none: "je suis occupée avec elle", "I'm busy with the victim".
"""

from __future__ import annotations

import re
from typing import Final

from nlu.folding import fold

_AGAIN: Final = r"(?:toujours |encore |tout le temps )?"
# The line or the call itself, in so many words.
_NAMED: Final = (
    # French: "la ligne est occupée", "ça sonne occupé", "l'appel a coupé", "le 911 répond pas"
    rf"ligne (?:du 911 )?(?:est |etait |)?{_AGAIN}occupee?"
    rf"|(?:sonne|sonnait|tombe|tombait|tombe sur) (?:la ligne )?{_AGAIN}occupee?"
    rf"|occupee? au 911|911 (?:est |etait |){_AGAIN}occupe"
    r"|(?:appel|ligne) (?:a |s est |)(?:coupe|coupee|tombee?|saute|plante)"
    r"|(?:appel|ligne) (?:n )?arrete pas de couper"
    r"|(?:pas|jamais|pu|plus) (?:encore )?(?:reussi|capable|pu|moyen) (?:a |de |d )?"
    r"(?:joindre|rejoindre|avoir) (?:le 911|la ligne|la police)"
    r"|arrive pas a (?:joindre|rejoindre|avoir) (?:le 911|la ligne|la police)"
    r"|le 911 (?:ne |n )?(?:repond|decroche) pas"
    # English: "the line is busy", "busy signal", "the call dropped", "couldn't get through"
    rf"|(?:line|911|number) (?:is |was |s |kept |keeps )?{_AGAIN}(?:busy|engaged)"
    r"|busy (?:signal|tone)"
    r"|(?:call|line) (?:just |got |was |has |have )?"
    r"(?:dropped|cut off|cut out|got cut|disconnected|went dead|died)"
    r"|call to 911 (?:just )?(?:dropped|cut off|cut out|died|went dead)"
    r"|(?:call|line) keeps (?:dropping|cutting off|cutting out|going dead)"
    r"|911 (?:is |are |s |did |does |was )?not (?:answer|answering|pick up|picking up)"
    r"|(?:could|can|did|does|do|will) not (?:go|get|got) through"
    r"|(?:could not|can not|did not manage to|have not managed to|unable to|failed to)"
    r" (?:reach|get hold of|get through to) (?:911|the police|dispatch)"
)
# Words that fail a call only when the call is the topic.
_UNNAMED: Final = (
    # French: "c'était occupé", "ça a coupé", "ils m'ont raccroché", "personne répond"
    rf"(?:c|ca) (?:est |etait |){_AGAIN}occupee?(?= *(?:[.,;!?]|$|mais|pis))"
    r"|(?:ca|on|ils|(?:on|ils?|elle) m) (?:a |ont |vient de |)?(?:coupe|raccroche)"
    r"|ca coupe (?:tout le temps|encore)|ca (?:n )?arrete pas de couper|ca a (?:saute|plante)"
    r"|personne (?:ne |n )?(?:repond|reponds|a repondu|repondait|decroche|a decroche)"
    r"|(?:ca|ils?) (?:ne |n )?(?:repond|repondent|repondait|decroche|decrochent) pas"
    r"|(?:pas de|aucune|sans) reponse(?! (?:de|d|du|des) (?!911|la police|police))"
    r"|(?:pas|jamais|pu|plus) (?:encore )?(?:reussi|capable|pu|moyen) (?:a |de |d )?"
    r"(?:(?:les |le |la |l )?(?:joindre|rejoindre)|parler|avoir (?:la ligne|quelqu un))"
    r"|(?:j |je )?(?:n )?arrive pas a (?:(?:les |le |la |l )?(?:joindre|rejoindre)"
    r"|avoir (?:la ligne|quelqu un)|parler a quelqu un)"
    r"|ca (?:ne )?passe pas|pas de (?:reseau|signal)"
    # English: "it's busy", "it cut off", "they hung up on me", "nobody picked up"
    rf"|it (?:is |was |s |kept |keeps )?{_AGAIN}(?:busy|engaged)"
    r"|(?:it|they) (?:just |got |was |has |have )?"
    r"(?:dropped|cut off|cut out|got cut|disconnected|went dead)"
    r"|it keeps (?:dropping|cutting off|cutting out|going dead)"
    r"|(?:got|was|were|been) (?:disconnected|cut off)|hung up on me"
    r"|no ?(?:one|body) (?:is |was |s )?(?:answered|answers|answering|picked up|picks up"
    r"|picking up)"
    r"|no (?:answer|response)(?! from (?!911|the police|police|dispatch))"
    r"|(?:they|it) (?:did|do|does|is|are|was) not (?:answer|pick up)"
    r"|(?:they|it) (?:is |are |s |re )?not (?:answering|picking up)"
    r"|(?:could not|can not|did not manage to|have not managed to|unable to|failed to)"
    r" (?:reach|get hold of|get through|get anyone|get anybody)"
    r"|no (?:signal|service|reception)"
    # Either language, looser: "j'ai essayé d'appeler mais…", "I haven't been able to reach
    # them", "c'est encore occupé", "personne répond"
    r"|(?:not|pas|pu|never|jamais) (?:\w+ ){0,3}?(?:able|capable|reussi|rejoint|rejoindre"
    r"|joindre|reach\w*|get through|got through|through)"
    r"|(?:sonne|sonnait|ligne|line|it s|its) (?:\w+ ){0,3}?(?:occupee?|busy)"
    r"|(?:ca|personne|911|ligne) (?:\w+ )?repond(?:ent)? pas"
    r"|(?:nobody|no one) (?:answers|answered|picks up|picked up)"
)
# What follows a failure may say the call went through in the end ("the line was busy but I
# finally got through", "c'était occupé, j'ai fini par avoir quelqu'un").
_AFTER_ALL: Final = re.compile(
    r"\b(?:finalement|enfin|finally|eventually|fini par|ended up|managed to|got through"
    r"|(?<!pas )reussi a|(?<!pas )rejoint)\b"
)
_FAILED_NAMED: Final = re.compile(rf"\b(?:{_NAMED})\b")
_FAILED: Final = re.compile(rf"\b(?:{_UNNAMED})\b")
# "j'ai essayé d'appeler mais…", "I tried but…": two searches, not one ".*" (which tries every
# start: 27 ms on a 4,096-character message of "essayé").
_TRIED: Final = re.compile(r"\b(?:essaye|tente|tried|trying|attempted)\b")
_BUT: Final = re.compile(r"\b(?:mais|but)\b")
# The message is about the call to 911.
_ABOUT_911: Final = re.compile(
    r"\b(?:911|police|policiers?|policieres?|repartit(?:eur|rice)|dispatch(?:er)?|urgences?)\b"
)


def call_failed(text: str, *, calling: bool = False) -> bool:
    """Whether ``text`` says a call to 911 did not go through (busy, cut off, unanswered).

    ``calling``: the call to 911 is what is being done (its step, or an emergency), so
    "pas de réponse" or "they hung up on me" need not name it.
    """
    folded = fold(text)
    failures = [*_FAILED_NAMED.finditer(folded)]
    if calling or _ABOUT_911.search(folded) is not None:
        failures += _FAILED.finditer(folded)
        tried = _TRIED.search(folded)
        but = _BUT.search(folded, tried.end()) if tried is not None else None
        if but is not None:
            failures.append(but)
    if not failures:
        return False
    return not got_through_after(folded, max(failure.end() for failure in failures))


def got_through_after(folded: str, position: int) -> bool:
    """Whether folded text says, after ``position``, that the call went through in the end."""
    return _AFTER_ALL.search(folded, position) is not None
