"""Typed messages at any step, understood by the embedded NLU and answered from the content."""

from __future__ import annotations

from sqlalchemy import select

from bot.runtime import Runtime
from storage.models import EventKind, Incident, IncidentStatus, Role, TimelineEvent
from tests.conftest import add_member
from tests.support.transcript import Transcript


async def professional(runtime: Runtime, language: str = "fr") -> Transcript:
    pro = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 1001, "Julie", language)
    return Transcript(runtime.guide, pro.id)


async def opened(chat: Transcript, language: str = "fr") -> None:
    await chat.start()
    await chat.press("Situation réelle" if language == "fr" else "Real situation")


async def status(runtime: Runtime) -> IncidentStatus:
    async with runtime.sessions() as session:
        return (await session.scalars(select(Incident))).one().status


async def test_image_questions_get_the_never_list_answers(runtime: Runtime) -> None:
    chat = await professional(runtime)
    await opened(chat)
    await chat.press("Non, pas de danger immédiat")
    await chat.say("je peux transférer la photo au directeur?")
    assert "Ne transférez, n'envoyez, ne montrez" in chat.text()
    assert [b.label for b in chat.buttons()] == ["Compris"]  # back to the pending step
    await chat.say("est-ce que je peux regarder la photo pour vérifier")
    assert "Ne regardez jamais les images" in chat.text()
    await chat.say("je fais une capture d'écran comme preuve?")
    assert "Pas de capture d'écran" in chat.text()


async def test_device_and_parent_questions(runtime: Runtime) -> None:
    chat = await professional(runtime, "en")
    await opened(chat, "en")
    await chat.say("the mom wants the phone back")
    assert "do not give any phone back" in chat.text()
    await chat.say("who tells the parents?")
    assert "kit's information sheets" in chat.text()
    assert "aide-mémoire" in chat.text()


async def test_an_emergency_interrupts_then_returns_to_the_step(runtime: Runtime) -> None:
    chat = await professional(runtime)
    await opened(chat)
    await chat.press("Non, pas de danger immédiat")
    await chat.press("Compris")
    await chat.say("elle dit qu'elle veut pu vivre")
    text = chat.text()
    assert "appelez le 911 maintenant" in text
    assert "9-8-8" in text
    assert "Prenez la victime en charge" in text  # the step the user was on
    assert [b.label for b in chat.buttons()] == ["C'est fait"]


async def test_typed_911_confirmation_waits_for_the_button(runtime: Runtime) -> None:
    chat = await professional(runtime)
    await opened(chat)
    for label in ("Non, pas de danger immédiat", "Compris", "C'est fait", "1", "Grille remplie"):
        await chat.press(label)
    await chat.say("j'ai callé le 911")
    assert "Confirmez avec le bouton" in chat.text()
    assert await status(runtime) is IncidentStatus.OPEN  # nothing changes on words alone
    await chat.press("J'ai appelé le 911")
    assert await status(runtime) is IncidentStatus.POLICE_CALLED
    assert "numéro d'événement" in chat.text()


async def test_911_confirmed_early_is_skipped_later(runtime: Runtime) -> None:
    chat = await professional(runtime, "en")
    await opened(chat, "en")
    await chat.press("No immediate danger")
    await chat.say("I called 911 already, police is on the way")
    await chat.press("I called 911")
    assert await status(runtime) is IncidentStatus.POLICE_CALLED
    assert "Current step: Read the never-list" in chat.text()
    for label in ("Understood", "Done", "2", "Grid filled in"):
        await chat.press(label)
    assert "event number" in chat.text()  # the 911 step is not shown again


async def test_not_yet_is_not_a_confirmation(runtime: Runtime) -> None:
    chat = await professional(runtime)
    await opened(chat)
    for label in ("Non, pas de danger immédiat", "Compris", "C'est fait", "1", "Grille remplie"):
        await chat.press(label)
    await chat.say("j'ai pas encore appelé le 911")
    assert "Confirmez avec le bouton" not in chat.text()
    assert await status(runtime) is IncidentStatus.OPEN


async def test_typed_phone_count_is_offered_as_a_button(runtime: Runtime) -> None:
    chat = await professional(runtime)
    await opened(chat)
    for label in ("Non, pas de danger immédiat", "Compris", "C'est fait"):
        await chat.press(label)
    await chat.say("les 3 cells sont dans les sacs")
    assert "3 cellulaire(s) en sac" in [b.label for b in chat.buttons()]
    await chat.press("3 cellulaire(s) en sac")
    async with runtime.sessions() as session:
        assert (await session.scalars(select(Incident))).one().device_count == 3


async def test_phone_count_typed_in_words_is_recorded(runtime: Runtime) -> None:
    """ "deux" was read as a "not yet" ("D'accord. Quand ce sera fait, appuyez…") and "aucun"
    too, at a step that says "appuyez sur un nombre ou écrivez-le"."""
    chat = await professional(runtime)
    await opened(chat)
    for label in ("Non, pas de danger immédiat", "Compris", "C'est fait"):
        await chat.press(label)
    await chat.say("pas encore")
    assert "Quand ce sera fait" in chat.text()
    await chat.say("aucun")  # none to seize, or none bagged yet: the buttons say which
    assert "Appuyez sur « Aucun à saisir »" in chat.text()
    async with runtime.sessions() as session:
        assert (await session.scalars(select(Incident))).one().device_count is None
    await chat.say("deux")
    assert "remplissez la grille d'évaluation" in chat.text()
    async with runtime.sessions() as session:
        assert (await session.scalars(select(Incident))).one().device_count == 2


async def test_out_of_scope_and_gibberish(runtime: Runtime) -> None:
    chat = await professional(runtime)
    await opened(chat)
    await chat.say("c'est quoi le menu de la cafétéria aujourd'hui")
    assert "qu'au sujet du protocole SEXTO" in chat.text()
    await chat.say("qsdfkj zxlkq")
    understood = "Je n'ai pas compris" in chat.text() or "qu'au sujet du protocole" in chat.text()
    assert understood
    assert [b.label for b in chat.buttons()] == [
        "Oui, danger immédiat",
        "Non, pas de danger immédiat",
    ]


async def test_letter_soup_at_the_danger_question_is_not_a_yes(runtime: Runtime) -> None:
    """The danger question's answer to a yes says to call 911 now: not for a key held down."""
    chat = await professional(runtime)
    await opened(chat)
    for text in ("é" * 5000, "abcdef", "lkjlkj"):
        await chat.say(text)
        assert "Je n'ai pas compris" in chat.text()
        assert "appelez le 911 maintenant" not in chat.text()
        assert [b.label for b in chat.buttons()] == [
            "Oui, danger immédiat",
            "Non, pas de danger immédiat",
        ]
    await chat.say("certainement")  # a word the data lacks, in letters it knows: still a yes
    assert "appelez le 911 maintenant" in chat.text()


async def test_doubt_at_the_danger_question_says_to_call_911(runtime: Runtime) -> None:
    """The engine reads "je sais pas" as a no, whose answer there is "press No immediate
    danger"; a doubt is told to call 911 now, and nothing moves until a button is pressed."""
    chat = await professional(runtime)
    await opened(chat)
    for text in ("je sais pas", "pas sûr", "peut-être", "euh aucune idée", "euh", "hmm..."):
        await chat.say(text)
        assert "Dans le doute" in chat.text()
        assert "appelez le 911 maintenant" in chat.text()
        assert "Non, pas de danger immédiat »" not in chat.text()
        assert [b.label for b in chat.buttons()] == [
            "Oui, danger immédiat",
            "Non, pas de danger immédiat",
        ]
    await chat.say("non")
    assert "appuyez sur « Non, pas de danger immédiat »" in chat.text()


async def test_real_or_drill_typed_says_which_button_to_press(runtime: Runtime) -> None:
    """ "just a drill" was read as 911 called ("the incident is not open yet"); nothing opens
    until a button is pressed."""
    chat = await professional(runtime, "en")
    await chat.start()
    await chat.say("just a drill")
    assert 'A drill: press "Drill"' in chat.text()
    await chat.say("no, it's real")
    assert 'press "Real situation" to open the incident' in chat.text()
    assert [b.label for b in chat.buttons()] == ["Real situation", "Drill"]
    async with runtime.sessions() as session:
        assert (await session.scalars(select(Incident))).first() is None
    await chat.press("Drill")
    async with runtime.sessions() as session:
        assert (await session.scalars(select(Incident))).one().drill


async def test_reporting_a_situation_offers_to_open_an_incident(runtime: Runtime) -> None:
    chat = await professional(runtime)
    await chat.say("un élève m'a dit que sa photo circule")
    assert [b.data for b in chat.buttons()] == ["start"]


async def test_the_timeline_keeps_intent_and_confidence(runtime: Runtime) -> None:
    chat = await professional(runtime, "en")
    await opened(chat, "en")
    await chat.say("should I tell him to delete it?")
    async with runtime.sessions() as session:
        rows = await session.scalars(
            select(TimelineEvent).where(TimelineEvent.kind == EventKind.MESSAGE_IN)
        )
        said = [r.data for r in rows if "text" in r.data]
    assert said[-1]["intent"] == "ask_delete_image"
    assert 0.4 <= said[-1]["confidence"] <= 1.0


async def test_the_guide_on_the_rasa_engine(config, database_url, clock) -> None:  # type: ignore[no-untyped-def]
    """The same answers with `nlu.engine: rasa`, against the live server (CI starts one)."""
    import os

    import pytest

    from bot.settings import Config
    from nlu.cli import rasa_reachable
    from tests.conftest import settings_for

    url = os.environ.get("SEXTO_TEST_RASA_URL", "http://127.0.0.1:5005")
    if not rasa_reachable(url):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: no Rasa server at {url}")
        pytest.skip(f"no Rasa server at {url} (make rasa-start)")
    data = config.model_dump()
    data["nlu"] = {**data["nlu"], "engine": "rasa", "rasa_url": url, "timeout": "5s"}
    runtime = Runtime.create(settings_for(Config.model_validate(data), database_url), clock=clock)
    await runtime.prepare_database()
    try:
        chat = await professional(runtime)
        await opened(chat)
        await chat.say("la mère veut ravoir le cellulaire")
        assert "ne rendez aucun cellulaire" in chat.text()
        await chat.say("elle parle de se faire du mal")
        assert "9-8-8" in chat.text()
    finally:
        await runtime.close()
