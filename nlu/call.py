"""A call to 911 that did not go through: "ça sonne occupé", "l'appel a coupé", "no answer".

No intent of the catalogue says a call failed, and the engines read "I called 911 but the call
dropped" (0.83) and "j'ai appelé, c'était occupé" (0.72) as 911 called, "j'ai appelé le 911
mais personne répond" as a question on calling (0.74) and "tried calling but it cut off" as a
not-yet ("OK. When it is done, press the button"). The answer to all of them is to call again
at once. The dialogues ask `call_failed` while an incident's 911 call is not recorded. Matching
runs on folded text (no accents, lower case, "couldn't" -> "could not").

Being busy oneself is no failed call: "occupé" and "busy" count only as the line's ("la ligne
est occupée", "ça sonne occupé", "it's busy", "busy signal"), not "je suis occupée avec elle".
"""

from __future__ import annotations

import re
from typing import Final

from nlu.folding import fold

_FRENCH: Final = (
    # The line: "la ligne est occupée", "ça sonne occupé", "c'était occupé", "occupé au 911"
    r"ligne (?:du 911 )?(?:est |etait |)(?:toujours |encore )?occupee?"
    r"|(?:sonne|sonnait|tombe|tombait|tombe sur) (?:la ligne )?(?:toujours |encore )?occupee?"
    r"|(?:c|ca|911) (?:est |etait |)(?:toujours |encore )?occupee?"
    r"(?= *(?:[.,;!?]|$|au 911|mais|pis))"
    r"|occupee? au 911"
    # Cut off: "ça a coupé", "l'appel a coupé", "ça coupe", "coupé avant que je parle"
    r"|(?:ca|appel|ligne|on|ils|(?:on|ils?|elle) m) (?:a |ont |s est |vient de |)?"
    r"(?:coupe|coupee|raccroche)"
    r"|(?:appel|ligne) (?:a )?(?:coupe|coupee|tombee?|saute)"
    r"|ca coupe|ca a saute|la ligne a saute|ca raccroche|(?:ca|appel) (?:a )?plante"
    # Nobody answers: "personne répond", "ça répond pas", "pas de réponse", "aucune réponse"
    r"|personne (?:ne |n )?(?:repond|reponds|a repondu|repondait|decroche|a decroche)"
    r"|(?:ca|ils?|le 911) (?:ne |n )?(?:repond|repondent|repondait|decroche|decrochent) pas"
    r"|pas de reponse|aucune reponse|sans reponse"
    # Could not get through: "pas réussi à joindre le 911", "pas capable de les rejoindre"
    r"|(?:pas|jamais|pu|plus) (?:encore )?(?:reussi|capable|pu|moyen) (?:a |de |d )?"
    r"(?:(?:les |le |la |l )?(?:joindre|rejoindre)|parler|avoir (?:la ligne|quelqu un|le 911))"
    r"|(?:j |je )?(?:n )?arrive pas a (?:(?:les |le |la |l )?(?:joindre|rejoindre)|avoir"
    r" (?:la ligne|quelqu un|le 911)|parler a quelqu un)"
    r"|(?:ca|ligne|appel) (?:n )?arrete pas de couper|ca coupe (?:tout le temps|encore)"
    r"|ca (?:ne )?passe pas|pas de (?:reseau|signal)"
)
_ENGLISH: Final = (
    # The line: "the line is busy", "it was busy", "busy signal", "911 was engaged"
    r"(?:line|it|911|number) (?:is |was |s |kept |keeps |still )?"
    r"(?:(?:still|always) )?(?:busy|engaged)"
    r"|busy (?:signal|tone)"
    # Cut off: "the call dropped", "it cut off", "got disconnected", "they hung up on me"
    r"|(?:call|it|line|they) (?:just |got |was |has |have )?"
    r"(?:dropped|cut off|cut out|got cut|disconnected|went dead)"
    r"|hung up on me|call to 911 (?:just )?(?:dropped|cut off|cut out|died|went dead)"
    r"|(?:call|it|line) keeps (?:dropping|cutting off|cutting out|going dead)"
    r"|(?:got|was|were|been) (?:disconnected|cut off)"
    # Nobody answers: "no answer", "nobody picked up", "no one is answering"
    r"|no ?(?:one|body) (?:is |was |s )?(?:answered|answers|answering|picked up|picks up"
    r"|picking up)"
    r"|no answer|no response|(?:they|it|911) (?:did|do|does|is|are|was) not (?:answer|pick up)"
    r"|(?:911|they|it|line) (?:is |are |s |re )?not (?:answering|picking up)"
    # Could not get through: "couldn't get through", "haven't managed to reach 911"
    r"|(?:could|can|did|does|do|will) not (?:go|get|got) through"
    r"|(?:could not|can not|did not manage to|have not managed to|unable to|failed to)"
    r" (?:reach|get hold of|get through|get 911|get anyone|get anybody)"
    r"|no (?:signal|service|reception)"
)
_FAILED: Final = re.compile(rf"\b(?:{_FRENCH}|{_ENGLISH})\b")


def call_failed(text: str) -> bool:
    """Whether ``text`` says a call did not go through (busy, cut off, unanswered)."""
    return _FAILED.search(fold(text)) is not None
