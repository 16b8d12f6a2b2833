"""The embedded engine: a scikit-learn intent classifier trained in-process from nlu/data.

Features are TF-IDF word 1-2-grams and char 2-5-grams (within words) over folded text, so
accents, case, stretched letters and most typos cost little; the classifier is a linear SVM
with sigmoid-calibrated probabilities. Training takes a few seconds; the trained model is
cached on disk under a key made of the data files, this module's version and scikit-learn's,
so a restart with the same data loads it at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import sklearn  # type: ignore[import-untyped]
from scipy.special import expit  # type: ignore[import-untyped]
from sklearn.calibration import CalibratedClassifierCV  # type: ignore[import-untyped]
from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]
from sklearn.pipeline import FeatureUnion, make_pipeline, make_union  # type: ignore[import-untyped]
from sklearn.svm import LinearSVC  # type: ignore[import-untyped]

from nlu.entities import EntityExtractor
from nlu.folding import LETTER, fold
from nlu.training_data import Example, data_files, load_training_data
from nlu.types import DEFAULT_THRESHOLD, NLU_FALLBACK, Parse, decide

logger = logging.getLogger(__name__)

# Bump whenever features, model or preprocessing change: it invalidates cached models.
MODEL_VERSION: Final = "4"
DEFAULT_DATA_DIR: Final = Path(__file__).resolve().parent / "data"
_LONG_NUMBER = re.compile(r"\b\d+(?:[ -]\d+)+\b|\b\d{4,}\b")
# The radio's "10-4" (OK) is a word, not a number to blank like an event number ("EV-2026-777"
# was read as affirm once "10-4" was trained as affirm).
_TEN_FOUR = re.compile(r"(?<!\d )\b10 4\b(?! \d)")
_HAS_WORD = re.compile(r"\w")
# Words of any length (joual "y", "pis", "k") and the question mark, which tells questions.
_TOKENS: Final = r"(?u)\b\w+\b|\?"


def default_cache_dir() -> Path:
    """Where trained models are cached unless told otherwise: ~/.cache/sexto/nlu."""
    return Path.home() / ".cache" / "sexto" / "nlu"


def prepare(text: str) -> str:
    """The text the classifier sees: folded, with event numbers and phone numbers blanked."""
    return _LONG_NUMBER.sub(" 0000 ", _TEN_FOUR.sub("tenfour", fold(text)))


class IntentModel:
    """A trained intent classifier: text in, intents ranked by probability out."""

    def __init__(self, pipeline: Any, classes: Sequence[str]) -> None:
        """Wrap a fitted scikit-learn pipeline and its class names."""
        self._pipeline = pipeline
        self.classes: tuple[str, ...] = tuple(classes)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        # derived from the pipeline, made again when needed
        state.pop("_linear", None)
        state.pop("_letters", None)
        return state

    @classmethod
    def train(cls, examples: Sequence[Example]) -> IntentModel:
        """Fit the classifier on training examples (a few seconds for ~1,500 of them)."""
        features = make_union(
            TfidfVectorizer(
                analyzer="word",
                ngram_range=(1, 2),
                sublinear_tf=True,
                token_pattern=_TOKENS,
            ),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        )
        classifier = CalibratedClassifierCV(
            LinearSVC(C=1.0, max_iter=20_000, random_state=0),
            method="sigmoid",
            cv=5,
            ensemble=False,
        )
        pipeline = make_pipeline(features, classifier)
        pipeline.fit([prepare(e.text) for e in examples], [e.intent for e in examples])
        return cls(pipeline, [str(c) for c in pipeline.classes_])

    def rank(self, text: str) -> tuple[tuple[str, float], ...]:
        """All intents with their probabilities, best first."""
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            probabilities = self.probabilities(prepare(text))
        ranking = sorted(
            zip(self.classes, (float(p) for p in probabilities), strict=True),
            key=lambda item: item[1],
            reverse=True,
        )
        return tuple(ranking)

    def familiar(self, text: str) -> bool:
        """Whether the text is written in the letters of the training data.

        It is when one of its words is a word of the data, or when enough of its letter
        triplets (within words, edges included) are triplets of the data. Letter soup is not:
        "abcdef", "lkjlkj", "ééééé". Without this, the model reads most single unknown words
        as a yes ("abcdef" 0.71, "oh" 0.77, "omg" 0.63): a yes is the intent of 59 of the
        data's 127 one-word examples. Words the data lacks but whose letters it knows keep
        their reading ("certainement", "parfaitement", "gotcha", "salutations").
        """
        letters = self.__dict__.get("_letters")
        if letters is None:
            letters = self._letters = _Letters.of(self._pipeline)
        return letters is False or letters.familiar(prepare(text))

    def probabilities(self, prepared: str) -> Any:
        """The pipeline's ``predict_proba`` for one prepared text, computed in one go.

        scikit-learn is made for batches: for a single message, its feature union, vectorizers
        and calibrated classifier spend well over a millisecond checking and converting their
        input (the calibration applies its per-class sigmoids one class at a time, each call
        validating again), for some microseconds of arithmetic. Here the fitted model's own
        parts do that arithmetic directly: each vectorizer's analyzer, vocabulary and idf
        weights give the message's TF-IDF terms, the linear SVM's weights their scores, and
        all the sigmoids are applied at once, with the same formulas and normalisations (tests
        compare both on the held-out phrasings). Any other shape of model goes through
        scikit-learn.
        """
        linear = self.__dict__.get("_linear")
        if linear is None:
            linear = self._linear = _linear_model(self._pipeline, self.classes)
        if linear is False:
            return self._pipeline.predict_proba([prepared])[0]
        scores = linear.scores(prepared)
        probabilities = np.zeros(len(self.classes))
        probabilities[linear.order] = expit(-(linear.slopes * scores + linear.offsets))
        total = probabilities.sum()
        if total == 0:  # every sigmoid at zero: the uniform distribution, as scikit-learn
            return np.full(len(self.classes), 1 / len(self.classes))
        probabilities /= total
        probabilities[(probabilities > 1.0) & (probabilities <= 1.0 + 1e-5)] = 1.0
        return probabilities


@dataclass(frozen=True)
class _Terms:
    """One fitted TF-IDF vectorizer (sublinear tf, l2 norm) and where its columns start."""

    analyze: Callable[[str], list[str]]
    vocabulary: dict[str, int]
    idf: Any
    offset: int

    def weights(self, text: str) -> tuple[Any, Any] | None:
        """The text's columns and TF-IDF weights, as the vectorizer's transform gives them."""
        counts: dict[int, int] = {}
        vocabulary = self.vocabulary
        for token in self.analyze(text):
            column = vocabulary.get(token)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        if not counts:
            return None
        columns = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        weights = np.log(np.fromiter(counts.values(), dtype=float, count=len(counts))) + 1.0
        weights *= self.idf[columns]
        weights /= np.sqrt(weights @ weights)
        return columns + self.offset, weights


# Below this share of letter triplets known to the data, a text of unknown words is letter
# soup. On 2,000 random strings of 3 to 10 letters, 0.6 caught 94%, and 85% of 1,000 runs
# along a keyboard row; it flagged 5% of the 32,700 French and English words (of the 20,000
# most frequent of each language) that the data lacks, and most of those the model read as
# a yes ("azure", "czech", "golf"). 0.7 caught 3 to 9 points more and flagged twice as many
# words, among them "mercii", "yas" and "nay", which the model read right.
FAMILIAR_SHARE: Final = 0.6


@dataclass(frozen=True)
class _Letters:
    """The words and letter triplets a fitted model's vectorizers learnt from the data."""

    split_words: Callable[[str], list[str]]
    split_letters: Callable[[str], list[str]]
    words: frozenset[str]
    triplets: frozenset[str]

    @classmethod
    def of(cls, pipeline: Any) -> _Letters | Literal[False]:
        """Read them off a pipeline made by :meth:`IntentModel.train` (False for another)."""
        union = pipeline[0] if len(pipeline) == 2 else None
        if not isinstance(union, FeatureUnion):
            return False
        by_kind = {v.analyzer: v for _, v in union.transformer_list}
        words, letters = by_kind.get("word"), by_kind.get("char_wb")
        if (
            words is None
            or letters is None
            or not letters.ngram_range[0] <= 3 <= letters.ngram_range[1]
        ):
            return False
        return cls(
            words.build_analyzer(),
            letters.build_analyzer(),
            frozenset(term for term in words.vocabulary_ if " " not in term),
            frozenset(term for term in letters.vocabulary_ if len(term) == 3),
        )

    def familiar(self, prepared: str) -> bool:
        """A word of the data, or enough of its letter triplets (see FAMILIAR_SHARE)."""
        if any(w in self.words for w in self.split_words(prepared) if LETTER.search(w)):
            return True
        triplets = [t for t in self.split_letters(prepared) if len(t) == 3]
        if not triplets:
            return True
        known = sum(t in self.triplets for t in triplets)
        return known >= FAMILIAR_SHARE * len(triplets)


@dataclass(frozen=True)
class _LinearModel:
    """The fitted parts of a TF-IDF union, a linear SVM and its one-fold sigmoid calibration."""

    terms: tuple[_Terms, ...]
    coefficients: Any  # features x classes
    intercepts: Any
    order: Any
    slopes: Any
    offsets: Any

    def scores(self, text: str) -> Any:
        """The SVM's decision function for one text."""
        found = [w for terms in self.terms if (w := terms.weights(text)) is not None]
        if not found:
            return self.intercepts.copy()
        columns = np.concatenate([c for c, _ in found])
        weights = np.concatenate([w for _, w in found])
        return weights @ self.coefficients[columns] + self.intercepts


def _linear_model(pipeline: Any, classes: Sequence[str]) -> _LinearModel | Literal[False]:
    """The parts of a pipeline made by :meth:`IntentModel.train` (a union of sublinear,
    l2-normalised TF-IDF vectorizers, then a one-fold sigmoid-calibrated linear SVM over more
    than two classes); False for any other model."""
    if len(pipeline) != 2:
        return False
    union, final = pipeline[0], pipeline[-1]
    calibrated = getattr(final, "calibrated_classifiers_", None)
    if (
        not isinstance(union, FeatureUnion)
        or union.transformer_weights is not None
        or not isinstance(final, CalibratedClassifierCV)
        or calibrated is None
        or len(calibrated) != 1
        or calibrated[0].method != "sigmoid"
        or len(classes) <= 2
    ):
        return False
    terms = []
    offset = 0
    for _, vectorizer in union.transformer_list:
        if (
            not isinstance(vectorizer, TfidfVectorizer)
            or vectorizer.norm != "l2"
            or not vectorizer.use_idf
            or not vectorizer.sublinear_tf
            or vectorizer.binary
        ):
            return False
        vocabulary = dict(vectorizer.vocabulary_)
        terms.append(_Terms(vectorizer.build_analyzer(), vocabulary, vectorizer.idf_, offset))
        offset += len(vocabulary)
    one = calibrated[0]
    svm = one.estimator
    if not isinstance(svm, LinearSVC) or svm.coef_.shape[1] != offset:
        return False
    return _LinearModel(
        terms=tuple(terms),
        coefficients=np.ascontiguousarray(svm.coef_.T),
        intercepts=np.asarray(svm.intercept_, dtype=float),
        order=np.searchsorted(np.asarray(one.classes), svm.classes_),
        slopes=np.array([c.a_ for c in one.calibrators], dtype=float),
        offsets=np.array([c.b_ for c in one.calibrators], dtype=float),
    )


def model_key(files: Sequence[Path]) -> str:
    """Cache key of a model: the data files (names, bytes), this code's and sklearn's versions."""
    digest = hashlib.sha256(f"{MODEL_VERSION}|{sklearn.__version__}".encode())
    for path in sorted(files):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def load_or_train(data_dir: Path, cache_dir: Path) -> IntentModel:
    """Load the cached model for this data, or train one and cache it."""
    files = data_files(data_dir)
    if not files:
        raise FileNotFoundError(f"no NLU training data under {data_dir}")
    key = model_key(files)
    path = cache_dir / f"embedded-{key}.pickle"
    if path.exists():
        try:
            # Our own cache, written below by this code for this exact data and version.
            model = pickle.loads(path.read_bytes())  # noqa: S301
            if isinstance(model, IntentModel):
                return model
        except Exception:  # a corrupt or foreign file: retrain and overwrite it
            logger.warning("NLU model cache %s unreadable; retraining", path, exc_info=True)
    model = IntentModel.train(load_training_data(files).examples)
    _write_cache(cache_dir, path, model)
    return model


def _write_cache(cache_dir: Path, path: Path, model: IntentModel) -> None:
    """Store a model atomically and remove older cached models; failures only log."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache_dir, suffix=".tmp", delete=False) as file:
            file.write(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(file.name, path)
        for old in cache_dir.glob("embedded-*.pickle"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        logger.warning("cannot cache the NLU model in %s", cache_dir, exc_info=True)


class EmbeddedInterpreter:
    """In-process interpreter: the intent model, a threshold and the entity rules."""

    def __init__(
        self,
        model: IntentModel,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        extractor: EntityExtractor | None = None,
    ) -> None:
        """Use a trained model; below the threshold the intent is nlu_fallback."""
        self.model = model
        self.threshold = threshold
        self._extractor = extractor or EntityExtractor()

    @classmethod
    def from_data(
        cls,
        data_dir: Path = DEFAULT_DATA_DIR,
        *,
        cache_dir: Path | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> EmbeddedInterpreter:
        """Train from (or load the cached model of) a Rasa data directory."""
        model = load_or_train(data_dir, cache_dir or default_cache_dir())
        return cls(model, threshold=threshold)

    def parse_now(self, text: str) -> Parse:
        """Understand one message synchronously (well under a few milliseconds)."""
        entities = self._extractor.extract(text)
        if not _HAS_WORD.search(text):
            return Parse(text, NLU_FALLBACK, 0.0, (), entities)
        return decide(text, self.model.rank(text), entities, self.threshold)

    async def parse(self, text: str) -> Parse:
        """Understand one message."""
        return self.parse_now(text)

    def familiar(self, text: str) -> bool:
        """Whether the text is written in the letters of the training data (not letter soup)."""
        return self.model.familiar(text)
