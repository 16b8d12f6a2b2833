"""The bot's pipeline: the safety net only adds emergency, the guard, the factory, settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nlu.embedded import EmbeddedInterpreter
from nlu.interpreters import SafeInterpreter, build_interpreter, is_unconfirmed
from nlu.rasa_client import FallbackInterpreter
from nlu.settings import NluSettings
from nlu.types import (
    ASK_CALL_911,
    ASK_DEVICE_HANDLING,
    ASK_NEXT_STEP,
    CONFIRM_911_CALLED,
    CONFIRM_KIT_COLLECTED,
    DENY,
    EMERGENCY,
    NLU_FALLBACK,
    OUT_OF_SCOPE,
    Entity,
    Interpreter,
    Parse,
)


@dataclass
class EmbeddedStub:
    """An engine that answers a fixed intent apart from its ranking (below its threshold)."""

    intent: str
    confidence: float
    ranking: tuple[tuple[str, float], ...]

    async def parse(self, text: str) -> Parse:
        """Answer the fixed intent."""
        return Parse(text, self.intent, self.confidence, self.ranking, ())


@dataclass
class FixedEngine:
    """An engine that always answers the same ranking."""

    ranking: tuple[tuple[str, float], ...]
    entities: tuple[Entity, ...] = ()
    seen: list[str] = field(default_factory=list)

    async def parse(self, text: str) -> Parse:
        """Answer the fixed ranking."""
        self.seen.append(text)
        top, score = self.ranking[0]
        return Parse(text, top, score, self.ranking, self.entities)


async def test_safety_net_adds_emergency_and_keeps_the_engine_ranking() -> None:
    entity = Entity("device_count", "2", 0, 1)
    engine = FixedEngine((("start_incident", 0.9), ("emergency", 0.1)), (entity,))
    parse = await SafeInterpreter(engine).parse("2 cells, et il la fait chanter")
    assert parse.intent == EMERGENCY
    assert parse.confidence == 1.0
    assert parse.ranking == engine.ranking
    assert parse.entities == (entity,)
    assert engine.seen == ["2 cells, et il la fait chanter"]


async def test_safety_net_never_removes_emergency() -> None:
    engine = FixedEngine((("emergency", 0.8), ("greet", 0.2)))
    parse = await SafeInterpreter(engine).parse("the victim is fine")
    assert parse.intent == EMERGENCY
    assert parse.confidence == 0.8


async def test_quiet_net_leaves_the_engine_answer() -> None:
    engine = FixedEngine((("greet", 0.7), ("thank", 0.3)))
    assert (await SafeInterpreter(engine).parse("bonjour")).intent == "greet"


@pytest.mark.parametrize(
    "text",
    ["j'ai pas encore appelé le 911", "is this a 911 thing?", "I haven't called yet", "911?"],
)
async def test_questions_and_not_yet_never_confirm(text: str) -> None:
    engine = FixedEngine(((CONFIRM_911_CALLED, 0.7), (ASK_CALL_911, 0.2), (DENY, 0.1)))
    parse = await SafeInterpreter(engine, threshold=0.1).parse(text)
    assert parse.intent == ASK_CALL_911
    assert parse.confidence == pytest.approx(0.2 / 0.3)  # its share of the others' 0.3


@pytest.mark.parametrize(
    "text",
    [
        "I called 911 already. Now what",
        "I called 911. now what?",
        "ok les cells sont dans les sacs, c quoi la suite",
        "j'ai appelé le 911, on fait quoi",
        "le patrouilleur est parti avec la trousse. la suite?",
    ],
)
async def test_done_then_now_what_asks_for_the_next_step(text: str) -> None:
    """What was done, then "now what": the question is the request, not a confirmation."""
    engine = FixedEngine(((CONFIRM_911_CALLED, 0.7), (ASK_CALL_911, 0.2), (DENY, 0.1)))
    parse = await SafeInterpreter(engine).parse(text)
    assert parse.intent == ASK_NEXT_STEP
    assert parse.confidence == 0.7
    assert parse.stated == CONFIRM_911_CALLED  # the bot offers the button that records it


@pytest.mark.parametrize(
    "text",
    ["j'ai essayé d'appeler le 911 mais ça sonne occupé", "I haven't been able to reach 911"],
)
async def test_a_call_that_did_not_go_through_is_answered_with_how_to_call(text: str) -> None:
    """The next intent of the ranking was "not yet", answered at the first step with "press
    'no immediate danger'"."""
    engine = FixedEngine(((CONFIRM_911_CALLED, 0.8), (DENY, 0.15), (ASK_CALL_911, 0.05)))
    parse = await SafeInterpreter(engine).parse(text)
    assert parse.intent == ASK_CALL_911
    assert parse.stated is None


@pytest.mark.parametrize(
    "text", ["j'ai pas encore appelé le 911, on fait quoi", "now what", "should I call? now what"]
)
async def test_now_what_after_no_statement_states_nothing(text: str) -> None:
    engine = FixedEngine(((CONFIRM_911_CALLED, 0.7), (ASK_CALL_911, 0.2), (DENY, 0.1)))
    parse = await SafeInterpreter(engine, threshold=0.1).parse(text)
    assert parse.intent != CONFIRM_911_CALLED
    assert parse.stated is None


@pytest.mark.parametrize(
    "text",
    [
        "I told the parents, what now?",
        "ok les parents sont avisés faque on est rendu où",
        "j'ai parlé aux parents. La suite?",
        "parents called, where are we at",
        "I told the parents what now?",
    ],
)
async def test_what_was_done_then_where_are_we_asks_for_the_next_step(text: str) -> None:
    """The words of what was done draw the engine to their topic; the request is the next
    step (the first two were answered with the text on the parents)."""
    engine = FixedEngine((("ask_parents", 0.6), (ASK_NEXT_STEP, 0.3), (DENY, 0.1)))
    parse = await SafeInterpreter(engine).parse(text)
    assert parse.intent == ASK_NEXT_STEP
    assert parse.stated is None


@pytest.mark.parametrize(
    "text",
    [
        "who tells the parents? what next",  # a question first: it is the request
        "les parents veulent pas venir, pis là?",  # what went wrong, not what was done
        "j'ai pas encore appelé les parents, on est rendu où?",
        "the parents are here, what do I tell them?",  # how to handle it, not where we are
        "I told the parents what now",  # no mark, no break: not asked apart
        "what now?",  # nothing said before it
    ],
)
async def test_a_topic_question_stays_unless_something_was_done_before(text: str) -> None:
    engine = FixedEngine((("ask_parents", 0.6), (ASK_NEXT_STEP, 0.3), (DENY, 0.1)))
    assert (await SafeInterpreter(engine).parse(text)).intent == "ask_parents"


@pytest.mark.parametrize(
    "intent", [EMERGENCY, "report_received_image", "ask_return_device", "start_incident"]
)
async def test_what_raises_something_new_keeps_its_answer_before_where_are_we(
    intent: str,
) -> None:
    """After an image received on one's own phone, its answer is what is needed, not the step."""
    engine = FixedEngine(((intent, 0.6), (ASK_NEXT_STEP, 0.3), (DENY, 0.1)))
    parse = await SafeInterpreter(engine).parse("un élève me l'a envoyée sur mon cell, pis là?")
    assert parse.intent == intent


@pytest.mark.parametrize(
    "text",
    [
        "I told the parents, what now?",
        "ok la victime est avec la psy, pis là?",
        "ok les parents sont avisés faque on est rendu où",
        "thanks! what now",
    ],
)
async def test_done_then_where_are_we_on_the_embedded_engine(
    pipeline: SafeInterpreter, text: str
) -> None:
    """Read as questions on the parents, on the victim's support and as thanks before."""
    assert (await pipeline.parse(text)).intent == ASK_NEXT_STEP


@pytest.mark.parametrize(("text", "understood"), [("1", False), ("3 ?", False), ("14h", True)])
async def test_a_bare_number_is_not_understood(text: str, understood: bool) -> None:
    """ "1" typed at a step was answered with the legal text (ask_legal 0.41)."""
    engine = FixedEngine((("ask_legal", 0.9), (ASK_CALL_911, 0.1)))
    parse = await SafeInterpreter(engine).parse(text)
    assert (parse.intent == "ask_legal") is understood
    assert parse.ranking == engine.ranking


@pytest.mark.parametrize(
    ("text", "understood"), [("EV-1", False), (" SQ26 ", False), ("EV-1, c'est quoi?", True)]
)
async def test_a_reference_number_alone_is_not_understood(text: str, understood: bool) -> None:
    """Typed at a step that does not ask for it, "EV-1" was answered with the legal text
    (ask_legal 0.43 on the embedded engine); at the step that asks, it is the event number."""
    engine = FixedEngine((("ask_legal", 0.9), (ASK_CALL_911, 0.1)))
    parse = await SafeInterpreter(engine).parse(text)
    assert (parse.intent == "ask_legal") is understood


@pytest.mark.parametrize("text", ["911", "9-1-1 ?", "10-4"])
async def test_911_and_10_4_are_words(text: str) -> None:
    engine = FixedEngine(((ASK_CALL_911, 0.8), ("affirm", 0.2)))
    assert (await SafeInterpreter(engine).parse(text)).intent == ASK_CALL_911


async def test_a_demoted_confirmation_is_sure_of_the_next_intent_by_its_share_of_the_rest() -> (
    None
):
    """A ranking of 0.9 for the confirmation left the question on 911 (0.06) not understood."""
    engine = FixedEngine(((CONFIRM_911_CALLED, 0.9), (ASK_CALL_911, 0.06), (DENY, 0.04)))
    parse = await SafeInterpreter(engine).parse("j'ai appelé le 911?")
    assert parse.intent == ASK_CALL_911
    assert parse.confidence == pytest.approx(0.6)
    assert parse.ranking == engine.ranking


async def test_a_demoted_confirmation_spread_thin_over_the_rest_is_fallback() -> None:
    rest = tuple((name, 0.01) for name in ("ask_legal", ASK_CALL_911, "ask_dpj", DENY))
    engine = FixedEngine(((CONFIRM_911_CALLED, 0.96), *rest))
    parse = await SafeInterpreter(engine).parse("j'ai appelé le 911?")
    assert parse.intent == NLU_FALLBACK
    assert parse.confidence == pytest.approx(0.25)


@pytest.mark.parametrize(
    "text",
    [
        "qu'est-ce que je dis au 911",
        "est-ce que le policier prend la trousse",
        "est-ce assez grave pour le 911",
        "c quel numero de rappel que je donne au 911",
        "quel numéro je donne au 911",
        "just checking, is 911 the right number for a sexting case",
        "le policier doit-il prendre la trousse",
        "on appelle-tu la police",
        "ok pis faut tu appeler le 911",
        "what do I tell 911",
        "is the officer supposed to take the kit",
        "who takes the kit",
        "should I put the phones in the bags",
        "So do I call 911 now",
        # what the speaker is about to do
        "je vais appeler le 911 dans 2 min",
        "j'vais caller la police",
        "I'm going to call 911 after this",
        "I'll bag the phones",
        "je vais remettre la trousse au patrouilleur",
        "j'vais le faire dans 5 min",
        "I'll do it in a sec",
        # the step taken on, not taken
        "ok will do",
        "911, will do right away",
        "le 911? je m'en occupe",
        "on s'en occupe tout de suite",
        # a call that did not go through
        "j'ai essayé d'appeler le 911 mais ça sonne occupé",  # read as 911 called, 0.79
        "I haven't been able to reach 911",  # 0.56
        "j'ai pas réussi à rejoindre le 911",
        "couldn't get through to 911",
        "la ligne du 911 est occupée",
        "ça répond pas au 911",
        "personne répond au 911",
        "nobody picked up at 911",
        "911 m'a mis en attente",
        "I'm on hold with 911",
        # no bags to put the phones in
        "we ran out of bags for the phones",  # read as the phones secured, 0.47
        "j'ai pas de sac pour le cell",
        "on manque de sacs",
    ],
)
def test_questions_plans_and_what_could_not_be_done_do_not_confirm(text: str) -> None:
    assert is_unconfirmed(text)


@pytest.mark.parametrize(
    "text",
    [
        "j'ai appelé le 911",
        "les cells sont dans les sacs, je les ai pas regardés",
        "Police is on the way!",
        "quand j'ai appelé le 911 ils m'ont dit qu'une patrouille s'en venait",
        "have called 911 already",
        "what a morning, the police is on its way",
        "le patrouilleur est parti avec la trousse, rendez-vous demain au poste",
        "la police va venir",
        "j'ai appelé le 911, je vais rester avec elle",
        "I called 911, I'll stay with her",
        "j'ai appelé le 911, je vais faire la grille",
        "j'ai appelé le 911, qui a dit qu'une patrouille s'en vient",
        "I called 911, they are sending someone now",
        "je m'en suis occupé, le 911 est appelé",
        # a hedge is not a question
        "both phones are in the kit bags, should be good",
        "kit's been handed over to the officer, should be all set",
        # a call that went through in the end
        "the line was busy but I finally got through",
        "j'ai appelé le 911, la ligne était occupée au début mais j'ai fini par les rejoindre",
        "I tried twice but got through on the third",
        "j'ai essayé le 911 pis ils envoient une patrouille",
        "called 911, no answer from the school officer though",
        "phones are bagged, no problem",
        "les téléphones sont dans le sac, pas d'inquiétude",
    ],
)
def test_plain_statements_can_confirm(text: str) -> None:
    assert not is_unconfirmed(text)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("I have the kit with me", ASK_NEXT_STEP),
        ("j'ai la trousse avec moi", ASK_NEXT_STEP),
        ("the kit is ready for the officer", ASK_NEXT_STEP),
        ("la trousse est prête", ASK_NEXT_STEP),
        ("le policier revient demain chercher les cells", ASK_NEXT_STEP),
        ("the officer is coming to get the kit", ASK_NEXT_STEP),
        ("le patrouilleur est parti avec la trousse", CONFIRM_KIT_COLLECTED),
        ("the officer took the kit", CONFIRM_KIT_COLLECTED),
        ("I handed the kit to the officer", CONFIRM_KIT_COLLECTED),
        ("j'ai remis la trousse au policier", CONFIRM_KIT_COLLECTED),
    ],
)
async def test_a_kit_still_on_hand_is_not_collected(text: str, intent: str) -> None:
    engine = FixedEngine(((CONFIRM_KIT_COLLECTED, 0.6), (ASK_NEXT_STEP, 0.3)))
    assert (await SafeInterpreter(engine).parse(text)).intent == intent


async def test_question_without_its_mark_is_not_taken_for_a_confirmation(
    pipeline: SafeInterpreter,
) -> None:
    for text in (
        "is the officer supposed to take the kit",
        "est-ce que le policier prend la trousse",
    ):
        assert (await pipeline.parse(text)).intent != CONFIRM_KIT_COLLECTED


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        # each was not understood while the next intent kept its raw score
        ("j'ai appelé le 911?", ASK_CALL_911),
        # the step that says to hand the kit over
        ("is the kit supposed to go with the officer?", ASK_NEXT_STEP),
        ("je les ai mis dans le sac, est-ce que je le ferme?", ASK_DEVICE_HANDLING),
        ("has the officer taken the kit?", ASK_NEXT_STEP),
    ],
)
async def test_a_question_on_a_step_is_answered_not_refused(
    pipeline: SafeInterpreter, text: str, intent: str
) -> None:
    assert (await pipeline.parse(text)).intent == intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("👍", "affirm"),
        ("👍🏽", "affirm"),
        ("✔️", "affirm"),
        ("👎", DENY),
        ("merci 🙏🏻", "thank"),
        ("🙏", "thank"),
        ("👋", "greet"),
        ("les cells sont dans les sacs ✅", "confirm_devices_secured"),
        ("😀", NLU_FALLBACK),
    ],
)
async def test_answering_emoji_are_read_as_their_words(
    pipeline: SafeInterpreter, text: str, intent: str
) -> None:
    """A thumbs-up alone was not understood ("Je n'ai pas compris"): it has no letter."""
    assert (await pipeline.parse(text)).intent == intent


async def test_the_engine_reads_the_emoji_as_words_and_finds_entities_in_that() -> None:
    engine = FixedEngine((("affirm", 0.9), (DENY, 0.1)))
    await SafeInterpreter(engine).parse("👍🏻 c'est fait")
    assert engine.seen == ["ok c'est fait"]


async def test_pipeline_end_to_end(pipeline: SafeInterpreter) -> None:
    assert (await pipeline.parse("elle dit qu'elle veut en finir")).intent == EMERGENCY
    assert (await pipeline.parse("j'ai pas encore appelé le 911")).intent == DENY
    assert (await pipeline.parse("should I call 911?")).intent == ASK_CALL_911
    assert (await pipeline.parse("j'ai callé le 911")).intent == CONFIRM_911_CALLED


@pytest.mark.parametrize(
    "text",
    [
        "non non, personne est en danger là",
        "nobody's in any danger, she's calm",
        "no, no one is in danger right now",
    ],
)
async def test_no_to_the_danger_question_is_no_emergency(
    pipeline: SafeInterpreter, text: str
) -> None:
    """The answer to the first step's question, typed instead of pressed: the emergency
    answer (911 now, crisis lines) would be the opposite of what was said."""
    assert (await pipeline.parse(text)).intent == DENY


async def test_a_confirmation_stands_only_when_the_second_opinion_reads_the_same() -> None:
    second = FixedEngine((("greet", 0.68), (CONFIRM_911_CALLED, 0.19)))
    rasa = SafeInterpreter(
        FixedEngine(((CONFIRM_911_CALLED, 0.88), ("greet", 0.1))), second_opinion=second
    )
    parse = await rasa.parse("Hey there, it's the vice-principal.")
    assert (parse.intent, parse.confidence) == ("greet", 0.68)

    agreed = SafeInterpreter(
        FixedEngine(((CONFIRM_911_CALLED, 0.9), (ASK_CALL_911, 0.1))),
        second_opinion=FixedEngine(((CONFIRM_911_CALLED, 0.8), (ASK_CALL_911, 0.2))),
    )
    assert (await agreed.parse("j'ai appelé le 911")).intent == CONFIRM_911_CALLED


async def test_between_two_confirmations_the_second_opinion_wins() -> None:
    rasa = SafeInterpreter(
        FixedEngine(((CONFIRM_911_CALLED, 0.65), (CONFIRM_KIT_COLLECTED, 0.3))),
        second_opinion=FixedEngine(((CONFIRM_KIT_COLLECTED, 0.8), (CONFIRM_911_CALLED, 0.1))),
    )
    parse = await rasa.parse("I handed the SEXTO kit over to the patrol officer at 11:30")
    assert (parse.intent, parse.confidence) == (CONFIRM_KIT_COLLECTED, 0.8)


async def test_a_second_opinion_below_the_threshold_is_not_understood() -> None:
    second = EmbeddedStub(NLU_FALLBACK, 0.38, (("ask_share_image", 0.38),))
    rasa = SafeInterpreter(
        FixedEngine(((CONFIRM_911_CALLED, 0.99), (DENY, 0.01))), second_opinion=second
    )
    assert (await rasa.parse("qqn me la airdrop")).intent == NLU_FALLBACK


async def test_the_second_opinion_leaves_other_readings_alone() -> None:
    second = FixedEngine(((CONFIRM_911_CALLED, 0.9), (DENY, 0.1)))
    rasa = SafeInterpreter(FixedEngine((("thank", 0.9), (DENY, 0.1))), second_opinion=second)
    assert (await rasa.parse("merci")).intent == "thank"


async def test_a_sure_second_opinion_wins_a_disagreement() -> None:
    """Rasa read "what happens legally to him?" as the next step (0.92) and "l'élève veut son
    téléphone pour rentrer chez lui" as the victim's support (1.00)."""
    rasa = SafeInterpreter(
        FixedEngine(((ASK_NEXT_STEP, 0.92), ("ask_legal", 0.05))),
        second_opinion=FixedEngine((("ask_legal", 0.71), (ASK_NEXT_STEP, 0.2))),
    )
    assert (await rasa.parse("what happens legally to him?")).intent == "ask_legal"


@pytest.mark.parametrize(
    ("second", "text"),
    [
        (("ask_legal", 0.55), "what happens to him?"),  # not sure enough
        ((CONFIRM_911_CALLED, 0.9), "is the dispatcher sending someone"),  # a question
        ((NLU_FALLBACK, 0.9), "what happens to him?"),
    ],
)
async def test_an_unsure_second_opinion_or_a_confirmation_leaves_rasa_s_reading(
    second: tuple[str, float], text: str
) -> None:
    rasa = SafeInterpreter(
        FixedEngine(((ASK_NEXT_STEP, 0.92), ("ask_legal", 0.05))),
        second_opinion=FixedEngine((second, (ASK_NEXT_STEP, 0.05))),
    )
    assert (await rasa.parse(text)).intent == ASK_NEXT_STEP


async def test_a_sure_confirmation_of_the_second_opinion_wins_on_a_plain_statement() -> None:
    """Rasa read "je viens d'appeler le 911" as a question on calling (1.00), and the step
    that asks for the call answered with how to call, not with the button that records it."""
    rasa = SafeInterpreter(
        FixedEngine(((ASK_CALL_911, 1.0),)),
        second_opinion=FixedEngine(((CONFIRM_911_CALLED, 0.65), (ASK_CALL_911, 0.33))),
    )
    assert (await rasa.parse("je viens d'appeler le 911")).intent == CONFIRM_911_CALLED


async def test_what_the_second_opinion_reads_as_out_of_scope_is_out_of_scope() -> None:
    """Rasa read "où est le local 204?" as a question on calling 911 (1.00)."""
    rasa = SafeInterpreter(
        FixedEngine(((ASK_CALL_911, 1.0),)),
        second_opinion=FixedEngine(((OUT_OF_SCOPE, 0.7), (ASK_CALL_911, 0.1))),
    )
    parse = await rasa.parse("où est le local 204?")
    assert (parse.intent, parse.confidence) == (OUT_OF_SCOPE, 0.7)


async def test_what_the_second_opinion_reads_as_an_emergency_is_an_emergency() -> None:
    """Rasa read "a man she met online is coming to pick her up after school" as a question on
    the victim's support (0.70); the embedded engine, as an emergency."""
    rasa = SafeInterpreter(
        FixedEngine((("ask_victim_support", 0.7), (EMERGENCY, 0.2))),
        second_opinion=FixedEngine(((EMERGENCY, 0.6), ("ask_victim_support", 0.3))),
    )
    parse = await rasa.parse("a man she met online is coming to pick her up after school")
    assert (parse.intent, parse.confidence) == (EMERGENCY, 0.6)


@pytest.mark.parametrize(
    ("second", "intent"),
    [
        ((EMERGENCY, 0.77), EMERGENCY),
        ((ASK_DEVICE_HANDLING, 0.7), ASK_DEVICE_HANDLING),  # sure of another reading
        ((ASK_DEVICE_HANDLING, 0.5), OUT_OF_SCOPE),  # not sure enough
    ],
)
async def test_what_rasa_reads_as_out_of_scope_gets_a_second_opinion(
    second: tuple[str, float], intent: str
) -> None:
    """Rasa read "un gars de 25 ans l'attend devant l'école" as out of scope (1.00), where the
    embedded engine read an emergency (0.77); and "where do I keep the phones overnight" too
    (1.00). The second opinion was not asked."""
    rasa = SafeInterpreter(
        FixedEngine(((OUT_OF_SCOPE, 1.0),)),
        second_opinion=FixedEngine((second, (OUT_OF_SCOPE, 0.1))),
    )
    assert (await rasa.parse("un gars de 25 ans l'attend devant l'école")).intent == intent


async def test_when_rasa_is_unsure_the_second_opinion_answers() -> None:
    """Rasa read "je peux utiliser une enveloppe à la place du sac?" below the threshold
    (0.16): not understood, where the embedded engine read the question on the phones."""
    rasa = SafeInterpreter(
        EmbeddedStub(NLU_FALLBACK, 0.16, ((ASK_DEVICE_HANDLING, 0.16), (ASK_CALL_911, 0.1))),
        second_opinion=FixedEngine(((ASK_DEVICE_HANDLING, 0.7), (ASK_CALL_911, 0.1))),
    )
    parse = await rasa.parse("je peux utiliser une enveloppe à la place du sac?")
    assert (parse.intent, parse.confidence) == (ASK_DEVICE_HANDLING, 0.7)


async def test_when_both_engines_are_unsure_the_message_is_not_understood() -> None:
    rasa = SafeInterpreter(
        EmbeddedStub(NLU_FALLBACK, 0.2, (("ask_dpj", 0.2),)),
        second_opinion=EmbeddedStub(NLU_FALLBACK, 0.3, (("ask_legal", 0.3),)),
    )
    assert (await rasa.parse("hmm")).intent == NLU_FALLBACK


async def test_a_question_rasa_is_unsure_of_is_no_confirmation_of_the_second_opinion() -> None:
    rasa = SafeInterpreter(
        EmbeddedStub(NLU_FALLBACK, 0.2, ((ASK_CALL_911, 0.2),)),
        second_opinion=FixedEngine(((CONFIRM_911_CALLED, 0.6), (ASK_CALL_911, 0.3))),
    )
    assert (await rasa.parse("la police a été appelée?")).intent == NLU_FALLBACK


async def test_an_emergency_read_by_the_engine_stands_against_the_second_opinion() -> None:
    second = FixedEngine(((OUT_OF_SCOPE, 0.8), (EMERGENCY, 0.2)))
    rasa = SafeInterpreter(FixedEngine(((EMERGENCY, 0.9),)), second_opinion=second)
    assert (await rasa.parse("la jeune est introuvable")).intent == EMERGENCY
    assert second.seen == []


async def test_build_interpreter_embedded(tmp_path: Path) -> None:
    interpreter: Interpreter = build_interpreter(NluSettings(cache_dir=tmp_path))
    assert isinstance(interpreter, SafeInterpreter)
    assert isinstance(interpreter.engine, EmbeddedInterpreter)
    assert (await interpreter.parse("merci beaucoup")).intent == "thank"


def test_build_interpreter_caches_the_model(tmp_path: Path) -> None:
    build_interpreter(NluSettings(cache_dir=tmp_path))
    assert len(list(tmp_path.glob("embedded-*.pickle"))) == 1


async def test_build_interpreter_rasa_falls_back_to_embedded(
    tmp_path: Path, closed_port_url: str
) -> None:
    settings = NluSettings(engine="rasa", rasa_url=closed_port_url, cache_dir=tmp_path)
    interpreter = build_interpreter(settings)
    assert isinstance(interpreter.engine, FallbackInterpreter)
    assert interpreter.second_opinion is interpreter.engine.fallback
    try:
        assert (await interpreter.parse("merci beaucoup")).intent == "thank"
        assert interpreter.engine.fallbacks == 1
    finally:
        await interpreter.aclose()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("engine", "spacy"),
        ("rasa_url", "localhost:5005"),
        ("timeout", 0),
        ("threshold", 1.5),
    ],
)
def test_bad_settings_fail_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"nlu.{key}"):
        NluSettings(**{key: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["abcdef", "lkjlkj", "é" * 5000, "oh", "omg", "hfjdksl zxq"])
async def test_letter_soup_is_not_understood(pipeline: SafeInterpreter, text: str) -> None:
    """The model read most of these as a yes ("abcdef" 0.71, "oh" 0.77)."""
    assert (await pipeline.parse(text)).intent == NLU_FALLBACK


@pytest.mark.parametrize("text", ["euh", "uh", "ah", "ben", "huh?", "mmm", "hum", "erm"])
async def test_hesitation_alone_is_not_understood(pipeline: SafeInterpreter, text: str) -> None:
    """The model read these as a yes ("uh" 0.87, "euh" 0.79, "huh?" 0.71) or "mmm" as an
    image received."""
    assert (await pipeline.parse(text)).intent == NLU_FALLBACK


@pytest.mark.parametrize(
    ("text", "intent"),
    [("mhm", "affirm"), ("uh-huh", "affirm"), ("euh oui", "affirm"), ("euh non", DENY)],
)
async def test_a_yes_in_sounds_or_after_a_hesitation_keeps_its_reading(
    pipeline: SafeInterpreter, text: str, intent: str
) -> None:
    assert (await pipeline.parse(text)).intent == intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("certainement", "affirm"),
        ("parfaitement", "affirm"),
        ("gotcha", "affirm"),
        ("salutations", "greet"),
        ("mercii", "thank"),
        ("nay", DENY),
    ],
)
async def test_words_the_data_lacks_in_letters_it_knows_keep_their_reading(
    pipeline: SafeInterpreter, text: str, intent: str
) -> None:
    assert (await pipeline.parse(text)).intent == intent


async def test_an_emergency_read_in_unfamiliar_letters_stands() -> None:
    alone = SafeInterpreter(FixedEngine(((EMERGENCY, 0.6), (DENY, 0.4))), familiar=lambda _: False)
    assert (await alone.parse("sqlkdj")).intent == EMERGENCY
    rasa = SafeInterpreter(
        FixedEngine((("affirm", 0.9), (DENY, 0.1))),
        second_opinion=FixedEngine(((EMERGENCY, 0.7), (DENY, 0.3))),
        familiar=lambda _: False,
    )
    assert (await rasa.parse("sqlkdj")).intent == EMERGENCY


async def test_with_rasa_letter_soup_is_not_understood_either(
    embedded: EmbeddedInterpreter,
) -> None:
    rasa = SafeInterpreter(
        FixedEngine((("affirm", 0.95), (DENY, 0.05))),
        second_opinion=embedded,
        familiar=embedded.familiar,
    )
    assert (await rasa.parse("abcdef")).intent == NLU_FALLBACK
    assert (await rasa.parse("ok")).intent == "affirm"


async def test_the_bot_s_pipelines_turn_letter_soup_away(
    tmp_path: Path, closed_port_url: str
) -> None:
    """Both engines' pipelines, as the bot builds them (Rasa down: the embedded fallback)."""
    for engine in ("embedded", "rasa"):
        settings = NluSettings(engine=engine, cache_dir=tmp_path, rasa_url=closed_port_url)
        interpreter = build_interpreter(settings)
        try:
            assert (await interpreter.parse("abcdef")).intent == NLU_FALLBACK
            assert (await interpreter.parse("certainement")).intent == "affirm"
        finally:
            await interpreter.aclose()
