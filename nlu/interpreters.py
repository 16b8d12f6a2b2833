"""Composition of the NLU: the safety net and the confirmation guard around an engine."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Final

from nlu.call import call_failed, got_through_after
from nlu.doubt import only_filler
from nlu.embedded import DEFAULT_DATA_DIR, EmbeddedInterpreter
from nlu.entities import PREFIXED_NUMBER
from nlu.folding import LETTER, emoji_as_words, fold
from nlu.rasa_client import FallbackInterpreter, RasaInterpreter
from nlu.safety import SafetyNet
from nlu.settings import NluSettings
from nlu.types import (
    ASK_CALL_911,
    ASK_CONFIDENTIALITY,
    ASK_COPY_IMAGE,
    ASK_DELETE_IMAGE,
    ASK_DEVICE_HANDLING,
    ASK_DPJ,
    ASK_LEGAL,
    ASK_NEXT_STEP,
    ASK_PARENTS,
    ASK_SHARE_IMAGE,
    ASK_VICTIM_SUPPORT,
    ASK_VIEW_IMAGE,
    CONFIRM_911_CALLED,
    CONFIRM_DEVICES_SECURED,
    CONFIRM_INTENTS,
    CONFIRM_KIT_COLLECTED,
    DEFAULT_THRESHOLD,
    EMERGENCY,
    GREET,
    NLU_FALLBACK,
    OUT_OF_SCOPE,
    THANK,
    Interpreter,
    Parse,
)

# "Negations and questions are not confirmations" (the intent contract): a message that
# asks, or says "not yet", never confirms a protocol step, whatever the engine thinks.
_NOT_YET: Final = re.compile(
    r"\b(?:pas|pu|plus|not|never|jamais) (?:\w+ )?(?:encore|yet)\b|\bpas encore\b"
    r"|\bnot yet\b|\byet\b|\bencore pas\b|\bstill (?:waiting|not|no)\b|\battends? encore\b"
)
_QUESTION: Final = re.compile(r"\?\s*\W*$")
# A call that did not go through is not a call made: "j'ai essayé d'appeler le 911 mais ça sonne
# occupé" and "I haven't been able to reach 911" were read as 911 called (0.79 and 0.56)
# (`nlu.call`, asked as if the message were about the call, since it was read as one); nor is a
# call on hold. What follows may still say it went through in the end ("the line was busy but
# I finally got through").
_ON_HOLD: Final = re.compile(r"\bon hold\b|\bmis en attente\b")
# The question on the step a confirmation records: Rasa read "je viens d'appeler le 911" as a
# question on calling (1.00), "I put the phones in the bags" as one on the phones.
_STEP_ASKED: Final = {
    CONFIRM_911_CALLED: ASK_CALL_911,
    CONFIRM_DEVICES_SECURED: ASK_DEVICE_HANDLING,
    CONFIRM_KIT_COLLECTED: ASK_NEXT_STEP,
}
# Nor are phones bagged without the bags: "we ran out of bags for the phones" was read as the
# phones secured (0.47).
_NO_BAGS: Final = re.compile(
    r"\b(?:ran out of|run out of|out of|no more|no|not enough|pas (?:assez )?d|plus d|pu d"
    r"|manque d|manquons d|manquer d) ?(?:\w+ )?(?:sacs?|bags?|envelopp\w*|pochett\w*)\b"
)
# A kit still on hand, or collected later, is not collected: "I have the kit with me", "the kit
# is ready for the officer", "le policier revient demain chercher les cells" were read as the
# kit collected (0.58, 0.87, 0.54).
_KIT_NOT_HANDED_OVER: Final = re.compile(
    r"\b(?:i (?:still )?have|i ve (?:still )?got|i m (?:still )?holding"
    r"|j ai(?: encore| toujours)?|je garde|on a(?: encore| toujours)?|we (?:still )?have)"
    r" (?:the|my|our|la|ma|notre|le|sa) (?:\w+ )?(?:kit|trousse)\b"
    r"|\b(?:kit|trousse) (?:is|est) (?:still |encore |toujours )?(?:with me|with us|here|ici"
    r"|avec moi|avec nous|dans mon bureau|in my office|on my desk|sur mon bureau|pret\w*|ready)\b"
    r"|\b(?:revient|reviendra|va revenir|va (?:venir|passer)|viendra|s en vient|s en viennent"
    r"|will (?:come|be back|pick|stop by|swing by)|coming (?:back|to get|for)|is coming"
    r"|are coming|demain|tomorrow)\b"
)
# What the speaker is about to do is not done yet: "je vais appeler le 911", "I'll bag the
# phones", "about to hand over the kit" (first person only: "la police va venir" confirms).
_ABOUT_TO: Final = re.compile(
    r"\b(?:j?vais|je m apprete a|je suis sur le point d"
    r"|i ?m (?:going to|gonna|about to)|i am (?:going to|about to)|i ll|i will)"
    r" (?:\w+ ){0,2}?(?:appel\w*|call\w*|telephon\w*|phone|ring|dial\w*|compos\w*|mettre"
    r"|put|bag\w*|ensach\w*|seal\w*|scell\w*|ramass\w*|confisqu\w*|take|prendre|remettre"
    r"|donner|give|hand\w*)\b"
    # the step itself, named by a pronoun: "j'vais le faire dans 5 min", "I'll do it now"
    r"|\b(?:j?vais|je m apprete a|je suis sur le point d) (?:(?:le|la|les|l|y) faire|faire ca)\b"
    r"|\b(?:i ?m (?:going to|gonna|about to)|i am (?:going to|about to)|i ll|i will)"
    r" do (?:it|that|this)\b"
    # said to take the step on, not that it is taken: "ok will do", "je m'en occupe"
    r"|\bwill do\b|\b(?:je m en|on s en) occupe\b"
)
# Questions typed without their question mark: an interrogative opening (after a filler like
# "ok" or "pis"), on the folded text. Openings that also start statements are left out: "quand
# j'ai appelé le 911, ils ont dit..." and "have called 911 already" do confirm, and so does a
# hedge: "the phones are in the bags, should be good".
_FILLER = (
    r"(?:(?:ok|okay|ok ben|bon|pis|puis|faque|fak|alors|donc|et|mais|so|and|but|hey|allo"
    r"|just checking|quick question|petite question|juste pour (?:savoir|verifier|etre sure?))"
    r",?\s)*"
)
_ASKING: Final = re.compile(
    r"^" + _FILLER + r"(?:"
    r"est ce|qu est ce|c(?: est|est)? (?:quoi|qui|quel\w*)|quel\w*|quoi|comment|pourquoi|combien"
    r"|qui (?!a |ai )"
    r"|ou (?:est|sont|je|j|on|mettre|va|vont)|lequel|laquelle|lesquels"
    r"|faut il|faut tu|faudrait il|faudrait tu|dois je|doit on|doit il|doit elle|devrais je"
    r"|devrait on|devrions nous|puis je|peut on|peux tu|pouvez vous"
    r"|what(?! a )|how(?! about)|why|who|whom|which|where|should(?! be\b)|shall|must i|must we"
    r"|do (?:i|we|you|they)|does|can (?:i|we|you|the)|could (?:i|we|you)|may i|am i"
    r"|is (?:it|the|this|that|there|911)|are (?:we|the|they|you)|would"
    r"|will (?:the|they|he|she|you)"
    r")\b"
)
# A short question closing a message, after what was done: "I called 911. Now what",
# "les cells sont dans les sacs, c quoi la suite" (the question is what is asked).
# How sure the second engine must be for its reading to win a disagreement with Rasa.
SURE: Final = 0.6
_CLAUSE_BREAK: Final = re.compile(r"[.!;,:\n]")
_LAST_CLAUSE_WORDS: Final = 5
# Where the protocol is at, asked at the end of a message that says what was just done: "I told
# the parents, what now?", "ok la victime est avec la psy, pis là?", "les parents sont avisés
# faque on est rendu où". The words of what was done draw the engine to that topic (the first
# two were read as questions on the parents and on supporting the victim); the request is the
# next step. Only asking where things stand counts here: "elle pleure, je fais quoi?" asks how
# to handle what was said, and stays the engine's.
_WHERE_NOW = (
    r"what now|now what|what next|then what|and then|what (?:s|is|comes) next|whats next"
    r"|(?:what s |what is |whats )?the next step|next step|la suite|c(?: est)? quoi la suite"
    r"|la suite c est quoi|quoi maintenant|et maintenant|pis maintenant|maintenant quoi"
    r"|(?:pis|et|and) (?:la|now|apres|apres ca|ensuite)|apres ca"
    r"|on (?:est|en est) rendus? ou|on en est ou|ou (?:est ce qu )?on en est|on est ou"
    r"|on est a quelle etape|(?:c est )?quoi la prochaine etape|(?:c est )?quelle (?:est )?la"
    r" prochaine etape|la prochaine etape|prochaine etape|where are we(?: at| now)?"
    r"|where do we stand|next"
)
# That short question: where things stand, or what to do now.
_FOLLOW_UP: Final = re.compile(
    r"^"
    + _FILLER
    + r"(?:(?:then|now|maintenant|la)\s)*(?:"
    + _WHERE_NOW
    + r"|on fait quoi|je fais quoi|maintenant|apres|after that|what do (?:i|we) do)$"
)
# Before it: a clause break, or a word that joins the two ("faque", "so"); only a space when
# the message ends with its question mark ("I told the parents what now?").
_JOINED_WHERE_NOW: Final = re.compile(
    r"(?:[.!;,:\n]|\b(?:faque|fak|so|alors|donc|mais|but|ok|okay|pis|puis|et|and))\s*"
    r"(?:(?:then|now|maintenant|la|ok)\s)*(?:" + _WHERE_NOW + r")$"
)
_ASKED_WHERE_NOW: Final = re.compile(r"\s(?:" + _WHERE_NOW + r")$")
# What went wrong is not what was done: "he won't hand over his phone, what now?" asks how to
# handle the phone.
_NEGATED: Final = re.compile(
    r"\b(?:not|never|nobody|nothing|no one|pas|pu|jamais|rien|aucun\w*|refus\w*)\b"
)
# What the engine may make of such a message, by the topic of what was done: these give way to
# the next step. Not an emergency, nor what raises something new that has an answer of its own
# (an image received, a phone asked back, an incident to start), nor a "yes" or "not yet" to
# the step shown, nor what lies outside the protocol.
_TOPICS_DONE: Final = frozenset(
    {
        ASK_PARENTS,
        ASK_VICTIM_SUPPORT,
        ASK_DPJ,
        ASK_LEGAL,
        ASK_CONFIDENTIALITY,
        ASK_CALL_911,
        ASK_DEVICE_HANDLING,
        ASK_VIEW_IMAGE,
        ASK_SHARE_IMAGE,
        ASK_COPY_IMAGE,
        ASK_DELETE_IMAGE,
        GREET,
        THANK,
    }
)
# A message without a letter ("1", "3?", but not "14h") says nothing an engine can rank, except
# the numbers that are words here: 911 and the radio's "10-4"; nor does a reference number
# typed alone ("EV-1", "SQ26": nlu.entities.PREFIXED_NUMBER).
# (The folding already makes "9-1-1" and "9 1 1" one word.)
_NUMBER_WORDS: Final = re.compile(r"\b(?:911|10 4)\b")
# French inversion ("dois-je", "le policier doit-il", "on appelle-tu"), on the text as typed.
_INVERSION: Final = re.compile(r"\w-(?:t-)?(?:je|tu|il|elle|on|ils|elles)\b", re.IGNORECASE)


def is_unconfirmed(text: str) -> bool:
    """Whether a message asks a question (with or without its question mark), says "not
    yet", says a call did not go through or that there are no bags, or says what the speaker
    is about to do, so it cannot confirm a step."""
    folded = fold(text)
    last = _last_clause(folded)
    return bool(
        _QUESTION.search(text.strip())
        or _NOT_YET.search(folded)
        or _did_not_go_through(folded)
        or _NO_BAGS.search(folded)
        or _ABOUT_TO.search(folded)
        or _ASKING.search(folded)
        or _INVERSION.search(text)
        or (len(last.split()) <= _LAST_CLAUSE_WORDS and _ASKING.search(last))
        or _FOLLOW_UP.search(last)
    )


def _did_not_go_through(folded: str) -> bool:
    if call_failed(folded, calling=True):
        return True
    hold = _ON_HOLD.search(folded)
    return hold is not None and not got_through_after(folded, hold.end())


def asks_what_next(text: str) -> bool:
    """Whether a message closes on "now what" / "c quoi la suite": it asks for the next step."""
    return bool(_FOLLOW_UP.search(_last_clause(fold(text))))


def said_then_where_now(text: str) -> bool:
    """Whether a message says something done (without a negation), then asks where things
    stand ("I told the parents, what now?"): its request is the next step."""
    folded = fold(text).rstrip(" .!?;,:")
    found = _JOINED_WHERE_NOW.search(folded)
    if found is None and _QUESTION.search(text.strip()):
        found = _ASKED_WHERE_NOW.search(folded)
    if found is None:
        return False
    said = folded[: found.start()].strip(" .!?;,:")
    return bool(LETTER.search(said)) and not _NEGATED.search(said) and not is_unconfirmed(said)


def _clauses(text: str) -> list[str]:
    """A message cut at its clause breaks, its final punctuation left out."""
    return _CLAUSE_BREAK.split(text.rstrip(".!?;,: "))


def _last_clause(folded: str) -> str:
    return _clauses(folded)[-1].strip()


def _before_last_clause(text: str) -> str:
    """The message without its last clause, as typed ("I called 911" of "I called 911. Now
    what")."""
    return " ".join(_clauses(text)[:-1]).strip()


class SafeInterpreter:
    """The bot's pipeline: safety net first, then the engine, then the confirmation guard.

    When the net fires, the intent is `emergency` with confidence 1.0 and the engine's
    ranking and entities are kept. A message without a letter (other than 911 and "10-4"), only
    a reference number ("EV-1"), or only hesitation or puzzlement ("euh", "hmm", "hein?") is
    nlu_fallback. A confirm_* intent on a question or a "not yet" gives way to the best other
    intent of the ranking, with its share of the other intents' scores as confidence (or
    nlu_fallback below the threshold).

    With a second opinion (the embedded engine beside Rasa), a confirmation stands only when
    the second engine reads the same one; otherwise the second engine's reading is taken. Rasa's
    wrong confirmations ("Hey there, it's the vice-principal." read as 911 called) are the
    costliest mistake it makes; on every phrasing measured the embedded engine agreed with each
    of its right ones, and made no wrong confirmation of its own. And a message the second
    engine reads as out of scope is out of scope: Rasa has no sense of what lies outside the
    protocol ("où est le local 204?" read as a question on calling 911, 1.00). And what the
    second engine reads as an emergency is one: Rasa read "a man she met online is coming to
    pick her up after school" and "she's saying she wants to disappear forever and has pills"
    as questions on the victim's support (0.70 and 1.00), where the embedded engine read
    emergencies; missing one costs far more than the emergency answer given once too often.
    And when Rasa is unsure (below the threshold), the second engine's reading, if it is sure
    of one, is taken ("je peux utiliser une enveloppe à la place du sac?", 0.16 on Rasa), but
    not a confirmation on a question or a "not yet". So is it when the two disagree and the
    second engine is at least ``SURE`` (0.6) of its reading: Rasa says 0.9 to 1.00 of most of
    its wrong readings ("what happens legally to him?" as the next step, 0.92; "l'élève veut
    son téléphone pour rentrer chez lui" as the victim's support, 1.00), so its confidence
    cannot tell them apart. On 789 labelled messages (the held-out file and five probes) this
    took 13 wrong readings right, and 2 right ones to another defensible reading ("le 911 veut
    savoir l'âge des élèves, je le dis?" as a question on who may be told). That reading may
    be a confirmation where Rasa read a question on the same step, on a message that is no
    question, no "not yet" and no failed call: Rasa read "je viens d'appeler le 911" and
    "dispatcher says an officer will be here soon" as questions on calling (1.00), and the
    step that asks for the call answered with how to call; a typed confirmation records
    nothing anyway (it is answered with the button that does). Rasa's own "out of scope" is
    asked about too: it read "un gars de 25 ans l'attend devant l'école" as out of scope
    (1.00) where the embedded engine read an emergency (0.77), and "where do I keep the
    phones overnight" (0.999).

    With ``familiar`` (the embedded engine's knowledge of the training data's letters), letter
    soup is nlu_fallback: "abcdef" was a yes (0.71), and 5,000 "é" typed at the danger question
    got that step's answer to a yes. Unless an engine reads an emergency in it.
    """

    def __init__(
        self,
        engine: Interpreter,
        safety_net: SafetyNet | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        second_opinion: Interpreter | None = None,
        familiar: Callable[[str], bool] | None = None,
    ) -> None:
        """Put the safety net and the guard around an engine."""
        self.engine = engine
        self.safety_net = safety_net or SafetyNet()
        self.threshold = threshold
        self.second_opinion = second_opinion
        self.familiar = familiar

    async def parse(self, text: str) -> Parse:
        """Understand one message, emergencies first."""
        text = emoji_as_words(text)
        hit = self.safety_net.check(text)
        parse = await self.engine.parse(text)
        if hit is not None:
            return (
                parse
                if parse.intent == EMERGENCY
                else replace(parse, intent=EMERGENCY, confidence=1.0)
            )
        if (
            not LETTER.search(text) and not _NUMBER_WORDS.search(fold(text))
        ) or PREFIXED_NUMBER.match(text.strip()):
            return replace(parse, intent=NLU_FALLBACK, confidence=0.0)
        if only_filler(text):
            # "euh", "hmm", "huh?": no intent of the catalogue (the engines read a yes).
            return replace(parse, intent=NLU_FALLBACK, confidence=0.0)
        if self.familiar is not None and parse.intent != EMERGENCY and not self.familiar(text):
            second = (
                parse if self.second_opinion is None else await self.second_opinion.parse(text)
            )
            if second.intent == EMERGENCY:
                return second
            return replace(parse, intent=NLU_FALLBACK, confidence=0.0)
        if parse.intent in CONFIRM_INTENTS and is_unconfirmed(text):
            done = _before_last_clause(text)
            if asks_what_next(text) and done and not is_unconfirmed(done):
                # "I called 911. Now what": the question is the request; what was done, said.
                return replace(parse, intent=ASK_NEXT_STEP, stated=parse.intent)
            if parse.intent == CONFIRM_911_CALLED and _did_not_go_through(fold(text)):
                # "ça sonne occupé": how to get 911 (the next intent was "not yet", whose
                # answer at the first step says to press "no immediate danger").
                return replace(parse, intent=ASK_CALL_911)
            return self._demote(parse)
        if self.second_opinion is not None and parse.intent != EMERGENCY:
            second = await self.second_opinion.parse(text)
            taken = second.intent != NLU_FALLBACK and not (
                second.intent in CONFIRM_INTENTS and is_unconfirmed(text)
            )
            if (
                second.intent in (EMERGENCY, OUT_OF_SCOPE)
                or (parse.intent in CONFIRM_INTENTS and second.intent != parse.intent)
                or (parse.intent == NLU_FALLBACK and taken)
                or (
                    second.intent != parse.intent
                    and (
                        second.intent not in CONFIRM_INTENTS
                        or _STEP_ASKED[second.intent] == parse.intent
                    )
                    and taken
                    and second.confidence >= SURE
                )
            ):
                parse = second
        if parse.intent == CONFIRM_KIT_COLLECTED and _KIT_NOT_HANDED_OVER.search(fold(text)):
            return self._demote(parse)
        if parse.intent in _TOPICS_DONE and said_then_where_now(text):
            return replace(parse, intent=ASK_NEXT_STEP)
        return parse

    def _demote(self, parse: Parse) -> Parse:
        """The best intent of the ranking that is not a confirmation.

        Its confidence is its share of what the ranking gives the other intents: once the
        message is known not to confirm, that is how sure the engine is of it. "est-ce que je
        confisque les phones de tous ceux qui sont dans le groupe chat" ranked a confirmation
        0.59 and the question on the phones 0.34, and was not understood; so were "has the
        officer taken the kit?" and "j'ai appelé le 911?". A ranking spread thin over the
        others still falls below the threshold ("le patrouilleur est-il parti avec la
        trousse?").
        """
        others = [(name, score) for name, score in parse.ranking if name not in CONFIRM_INTENTS]
        rest = sum(score for _, score in others)
        if rest > 0:
            others = [(name, score / rest) for name, score in others]
        if not others or others[0][1] < self.threshold:
            confidence = others[0][1] if others else 0.0
            return replace(parse, intent=NLU_FALLBACK, confidence=confidence)
        return replace(parse, intent=others[0][0], confidence=others[0][1])

    async def aclose(self) -> None:
        """Release the engine's resources (the Rasa client's connections)."""
        close = getattr(self.engine, "aclose", None)
        if close is not None:
            await close()


def build_interpreter(
    settings: NluSettings, *, data_dir: Path = DEFAULT_DATA_DIR
) -> SafeInterpreter:
    """Build the interpreter the bot uses: safety net + engine (+ fallback and second opinion
    for Rasa) + guard.

    The embedded engine is trained (or loaded from its cache) here, so this takes a few
    seconds on the first start with new data and milliseconds afterwards.
    """
    embedded = EmbeddedInterpreter.from_data(
        data_dir, cache_dir=settings.cache_dir, threshold=settings.threshold
    )
    if settings.engine == "embedded":
        return SafeInterpreter(embedded, threshold=settings.threshold, familiar=embedded.familiar)
    rasa = RasaInterpreter(
        settings.rasa_url, timeout=settings.timeout, threshold=settings.threshold
    )
    return SafeInterpreter(
        FallbackInterpreter(rasa, embedded),
        threshold=settings.threshold,
        second_opinion=embedded,
        familiar=embedded.familiar,
    )
