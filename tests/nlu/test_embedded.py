"""The embedded engine: unseen phrasings, the fallback threshold, the model cache, speed."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from nlu import embedded as embedded_module
from nlu.embedded import (
    DEFAULT_DATA_DIR,
    EmbeddedInterpreter,
    IntentModel,
    _LinearModel,
    load_or_train,
    prepare,
)
from nlu.training_data import load_training_data
from nlu.types import (
    ASK_CALL_911,
    ASK_COPY_IMAGE,
    ASK_DELETE_IMAGE,
    ASK_DEVICE_HANDLING,
    ASK_DPJ,
    ASK_NEXT_STEP,
    ASK_RETURN_DEVICE,
    ASK_SHARE_IMAGE,
    ASK_VICTIM_SUPPORT,
    ASK_VIEW_IMAGE,
    CONFIRM_911_CALLED,
    CONFIRM_DEVICES_SECURED,
    CONFIRM_KIT_COLLECTED,
    DENY,
    DEVICE_COUNT,
    EVENT_NUMBER,
    INTENTS,
    NLU_FALLBACK,
    OUT_OF_SCOPE,
    START_INCIDENT,
)
from tests.nlu.conftest import HOLDOUT


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("bon ben j'ai fini par appeler le 911, ils envoient qqn", CONFIRM_911_CALLED),
        ("ok the police said they're sending a car", CONFIRM_911_CALLED),
        ("les cells des 2 gars sont ensachés dans mon bureau", CONFIRM_DEVICES_SECURED),
        ("phones are sealed in the kit bags now", CONFIRM_DEVICES_SECURED),
        ("l'agent vient de repartir avec la trousse", CONFIRM_KIT_COLLECTED),
        ("j'ai pas encore callé la police", DENY),
        ("est-ce que je devrais appeler le 911 tu penses?", ASK_CALL_911),
        ("je peux jeter un coup d'oeil sur la pic?", ASK_VIEW_IMAGE),
        ("can I email the picture to our principal", ASK_SHARE_IMAGE),
        ("je fais-tu un screenshot pour la police", ASK_COPY_IMAGE),
        ("le gars devrait-tu effacer la vidéo?", ASK_DELETE_IMAGE),
        ("je ferme son cell ou je le laisse ouvert?", ASK_DEVICE_HANDLING),
        ("on doit-tu faire un signalement dpj", ASK_DPJ),
        ("ok pis là c'est quoi la prochaine affaire", ASK_NEXT_STEP),
        # A step reported done, then the question: the question is what is asked.
        ("ok les parents sont avisés faque on est rendu où dans la procédure", ASK_NEXT_STEP),
        ("la DPJ est avisée, je fais quoi ensuite", ASK_NEXT_STEP),
        ("c'est beau pour la grille, on continue avec quoi", ASK_NEXT_STEP),
        ("les parents sont au courant, c'est quoi la suite?", ASK_NEXT_STEP),
        ("une élève de sec 1 dit que son ex a partagé ses nudes", START_INCIDENT),
    ],
)
async def test_unseen_phrasings(embedded: EmbeddedInterpreter, text: str, intent: str) -> None:
    parse = await embedded.parse(text)
    assert parse.intent == intent, parse.ranking[:3]


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("a man called asking to meet with us tomorrow", OUT_OF_SCOPE),
        ("un homme a appelé, il veut nous voir demain matin", OUT_OF_SCOPE),
        ("his father says the phone is his, he paid for it, he's taking it", ASK_RETURN_DEVICE),
        ("she's rattled but safe now, how do we look after her this week", ASK_VICTIM_SUPPORT),
    ],
)
async def test_a_meeting_money_or_a_safe_victim_is_no_alarm(
    embedded: EmbeddedInterpreter, text: str, intent: str
) -> None:
    """Words the emergencies use (a man, a meeting, paying) in a message that reports none:
    the emergency answer would stop the professional for nothing."""
    parse = await embedded.parse(text)
    assert parse.intent == intent, parse.ranking[:3]


async def test_parse_ranks_every_intent(embedded: EmbeddedInterpreter) -> None:
    parse = await embedded.parse("j'ai appelé le 911, numéro d'événement 2026-104522")
    assert {name for name, _ in parse.ranking} == set(INTENTS)
    assert parse.ranking[0] == (parse.intent, parse.confidence)
    assert abs(sum(score for _, score in parse.ranking) - 1.0) < 1e-6
    assert parse.entity(EVENT_NUMBER) == "2026-104522"


def test_probabilities_are_the_calibrated_classifiers_own(intent_model: IntentModel) -> None:
    """The direct computation from the fitted model's parts gives scikit-learn's
    predict_proba on every held-out phrasing, and on texts that match no training word or no
    word at all."""
    texts = [e.text for e in load_training_data([HOLDOUT]).examples]
    texts += ["zzqx", "0000", "?", "wxyz qwrtp kkkk", "", "ôôô!!! 911 911 911"]
    pipeline = intent_model._pipeline
    for text in texts:
        ours = intent_model.probabilities(prepare(text))
        theirs = pipeline.predict_proba([prepare(text)])[0]
        assert np.allclose(ours, theirs, rtol=1e-9, atol=1e-12), text
    # The comparison above was of the direct computation, not of scikit-learn with itself.
    assert isinstance(intent_model.__dict__.get("_linear"), _LinearModel)


def test_a_model_read_back_from_the_cache_ranks_the_same(intent_model: IntentModel) -> None:
    text = "je peux-tu regarder la photo avant de la mettre dans le sac?"
    first = intent_model.rank(text)
    again = pickle.loads(pickle.dumps(intent_model))  # noqa: S301 - our own object
    assert "_linear" not in again.__dict__
    assert again.rank(text) == first


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("j'ai appelé le 9-1-1", CONFIRM_911_CALLED),
        ("ok c'est fait, j'ai signalé au neuf-un-un, une auto s'en vient", CONFIRM_911_CALLED),
        ("the nine one one call is done, a patrol car is on the way", CONFIRM_911_CALLED),
        ("should we call the D P J about this?", ASK_DPJ),
        ("on appelle-tu la dé pé ji?", ASK_DPJ),
    ],
)
async def test_911_and_the_dpj_spelled_out_or_dictated(
    embedded: EmbeddedInterpreter, text: str, intent: str
) -> None:
    """Read as the word, not as a number blanked ("9-1-1") or letters ("D P J")."""
    parse = await embedded.parse(text)
    assert parse.intent == intent, parse.ranking[:3]
    assert "911" in prepare("j'ai appelé le 9-1-1")


async def test_entities_come_with_the_intent(embedded: EmbeddedInterpreter) -> None:
    parse = await embedded.parse("j'ai mis les trois cells dans les sacs")
    assert parse.intent == CONFIRM_DEVICES_SECURED
    assert parse.entity(DEVICE_COUNT) == "3"


async def test_the_radio_ok_is_a_word_and_event_numbers_stay_numbers(
    embedded: EmbeddedInterpreter,
) -> None:
    """Blanked like any number, a trained "10-4" made "EV-2026-777" an affirm."""
    assert (await embedded.parse("10-4")).intent == "affirm"
    for number in ("EV-2026-777", "SQ-26-0042", "EV 2026 5551"):
        assert (await embedded.parse(number)).intent != "affirm", number


async def test_below_threshold_is_nlu_fallback(intent_model: IntentModel) -> None:
    strict = EmbeddedInterpreter(intent_model, threshold=0.999)
    parse = await strict.parse("hmm je sais pas trop")
    assert parse.intent == NLU_FALLBACK
    assert parse.confidence < 0.999
    assert parse.ranking  # what the engine hesitated between is kept


async def test_empty_or_symbol_only_message_is_nlu_fallback(
    embedded: EmbeddedInterpreter,
) -> None:
    for text in ("", "   ", "?!", "👍"):
        parse = await embedded.parse(text)
        assert parse.intent == NLU_FALLBACK
        assert parse.confidence == 0.0


def test_every_held_out_phrasing_is_in_familiar_letters(embedded: EmbeddedInterpreter) -> None:
    """The letter guard only ever turns away letter soup, never a real phrasing."""
    texts = [e.text for e in load_training_data([HOLDOUT]).examples]
    assert [t for t in texts if not embedded.familiar(t)] == []


def test_cached_model_loads_without_training(
    model_cache: Path, intent_model: IntentModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_training(*_: object) -> IntentModel:
        raise AssertionError("trained again although the cache holds this model")

    monkeypatch.setattr(IntentModel, "train", no_training)
    model = load_or_train(DEFAULT_DATA_DIR, model_cache)
    assert model.classes == intent_model.classes


def test_changed_data_or_version_retrains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    shutil.copytree(DEFAULT_DATA_DIR, data)
    cache = tmp_path / "cache"
    trainings: list[int] = []
    real_train = IntentModel.train.__func__  # type: ignore[attr-defined]

    def counting(cls: type[IntentModel], examples: object) -> IntentModel:
        trainings.append(1)
        return real_train(cls, examples)  # type: ignore[no-any-return]

    monkeypatch.setattr(IntentModel, "train", classmethod(counting))
    load_or_train(data, cache)
    load_or_train(data, cache)
    assert len(trainings) == 1
    with (data / "conversation.yml").open("a", encoding="utf-8") as file:
        file.write("- intent: greet\n  examples: |\n    - bonjour bonjour\n")
    load_or_train(data, cache)
    monkeypatch.setattr(embedded_module, "MODEL_VERSION", "test")
    load_or_train(data, cache)
    assert len(trainings) == 3
    assert len(list(cache.glob("embedded-*.pickle"))) == 1  # older models are removed


def test_corrupt_cache_is_replaced(tmp_path: Path, intent_model: IntentModel) -> None:
    first = load_or_train(DEFAULT_DATA_DIR, tmp_path)
    (cached,) = tmp_path.glob("embedded-*.pickle")
    cached.write_bytes(b"not a pickle")
    again = load_or_train(DEFAULT_DATA_DIR, tmp_path)
    assert again.classes == first.classes == intent_model.classes
    assert cached.read_bytes() != b"not a pickle"
