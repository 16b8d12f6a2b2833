"""Evaluation of an interpreter on labelled examples, through the pipeline the bot uses."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from nlu.training_data import Example
from nlu.types import CONFIRM_INTENTS, EMERGENCY, Interpreter


@dataclass(frozen=True, slots=True)
class IntentScores:
    """Precision (None when never predicted), recall and F1 of one intent."""

    intent: str
    precision: float | None
    recall: float
    f1: float
    support: int
    predicted: int


@dataclass(frozen=True, slots=True)
class Miss:
    """One wrongly understood example."""

    text: str
    expected: str
    predicted: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Report:
    """Scores of one interpreter on one set of examples."""

    engine: str
    examples: int
    accuracy: float
    macro_f1: float
    intents: tuple[IntentScores, ...]
    confusions: tuple[tuple[str, str, int], ...]
    emergency_recall: float | None
    confirm_precision: dict[str, float | None]
    latency_median_ms: float
    latency_p95_ms: float
    misses: tuple[Miss, ...]
    engine_fallbacks: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (intents keyed by name, confusions as objects)."""
        data = asdict(self)
        data["intents"] = {
            s.intent: {k: v for k, v in asdict(s).items() if k != "intent"} for s in self.intents
        }
        data["confusions"] = [
            {"expected": e, "predicted": p, "count": c} for e, p, c in self.confusions
        ]
        return data

    def scores(self, intent: str) -> IntentScores:
        """Scores of one intent."""
        return next(s for s in self.intents if s.intent == intent)


async def evaluate(
    interpreter: Interpreter,
    examples: Sequence[Example],
    *,
    engine: str = "embedded",
    worst: int = 10,
) -> Report:
    """Parse every example (timing each parse) and score the predicted intents."""
    predictions: list[tuple[Example, str, float]] = []
    latencies: list[float] = []
    for example in examples:
        start = time.perf_counter()
        parse = await interpreter.parse(example.text)
        latencies.append((time.perf_counter() - start) * 1000)
        predictions.append((example, parse.intent, parse.confidence))
    return score(predictions, latencies, engine=engine, worst=worst)


def score(
    predictions: Sequence[tuple[Example, str, float]],
    latencies_ms: Sequence[float],
    *,
    engine: str = "embedded",
    worst: int = 10,
    engine_fallbacks: int = 0,
) -> Report:
    """Metrics from (example, predicted intent, confidence) triples and parse times."""
    if not predictions:
        raise ValueError("nothing to evaluate")
    gold = Counter(example.intent for example, _, _ in predictions)
    predicted = Counter(intent for _, intent, _ in predictions)
    correct = Counter(e.intent for e, intent, _ in predictions if e.intent == intent)
    intents = tuple(_scores(i, correct[i], gold[i], predicted[i]) for i in sorted(gold))
    confusions = Counter((e.intent, intent) for e, intent, _ in predictions if e.intent != intent)
    misses = tuple(
        Miss(e.text, e.intent, intent, round(confidence, 3))
        for e, intent, confidence in predictions
        if e.intent != intent
    )
    by_name = {s.intent: s for s in intents}
    return Report(
        engine=engine,
        examples=len(predictions),
        accuracy=sum(correct.values()) / len(predictions),
        macro_f1=statistics.fmean(s.f1 for s in intents),
        intents=intents,
        confusions=tuple((e, p, c) for (e, p), c in confusions.most_common(worst)),
        emergency_recall=by_name[EMERGENCY].recall if EMERGENCY in by_name else None,
        confirm_precision={
            name: _precision(correct[name], predicted[name]) for name in CONFIRM_INTENTS
        },
        latency_median_ms=statistics.median(latencies_ms),
        latency_p95_ms=_percentile(latencies_ms, 95),
        misses=misses,
        engine_fallbacks=engine_fallbacks,
    )


def _precision(correct: int, predicted: int) -> float | None:
    """Precision, or None when the intent was never predicted."""
    return correct / predicted if predicted else None


def _scores(intent: str, correct: int, support: int, predicted: int) -> IntentScores:
    """Precision, recall and F1 of one intent from its counts."""
    precision = _precision(correct, predicted)
    recall = correct / support if support else 0.0
    p = precision or 0.0
    f1 = 2 * p * recall / (p + recall) if p + recall else 0.0
    return IntentScores(intent, precision, recall, f1, support, predicted)


def _percentile(values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, round(percent / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _number(value: float | None) -> str:
    """A score for the table, or a dash when undefined."""
    return "   -" if value is None else f"{value:.2f}"


def format_report(report: Report, *, misses: int = 15) -> str:
    """A human-readable table of one report."""
    lines = [
        f"engine {report.engine}: {report.examples} examples",
        f"accuracy {report.accuracy:.3f}   macro-F1 {report.macro_f1:.3f}   "
        f"emergency recall {_number(report.emergency_recall)}",
        "confirm precision: "
        + "  ".join(f"{k} {_number(v)}" for k, v in report.confirm_precision.items()),
        f"parse latency: median {report.latency_median_ms:.2f} ms, "
        f"p95 {report.latency_p95_ms:.2f} ms",
    ]
    if report.engine_fallbacks:
        lines.append(f"answered by the fallback engine: {report.engine_fallbacks}")
    lines += ["", f"{'intent':<26}{'prec':>6}{'recall':>8}{'F1':>6}{'n':>5}"]
    for s in sorted(report.intents, key=lambda s: s.f1):
        lines.append(
            f"{s.intent:<26}{_number(s.precision):>6}{s.recall:>8.2f}{s.f1:>6.2f}{s.support:>5}"
        )
    if report.confusions:
        lines += ["", "worst confusions (expected -> predicted):"]
        lines += [f"  {c:>3}  {e} -> {p}" for e, p, c in report.confusions]
    if report.misses and misses:
        lines += ["", "some misses:"]
        lines += [
            f"  [{m.expected} -> {m.predicted} {m.confidence:.2f}] {m.text}"
            for m in report.misses[:misses]
        ]
    return "\n".join(lines)


def format_comparison(reports: Sequence[Report]) -> str:
    """Several engines side by side on the headline numbers and per-intent F1."""
    width = 14
    header = f"{'':<34}" + "".join(f"{r.engine:>{width}}" for r in reports)
    rows: list[tuple[str, list[str]]] = [
        ("examples", [str(r.examples) for r in reports]),
        ("accuracy", [f"{r.accuracy:.3f}" for r in reports]),
        ("macro-F1", [f"{r.macro_f1:.3f}" for r in reports]),
        ("emergency recall", [_number(r.emergency_recall) for r in reports]),
    ]
    for name in CONFIRM_INTENTS:
        rows.append((f"precision {name}", [_number(r.confirm_precision[name]) for r in reports]))
    rows += [
        ("parse median (ms)", [f"{r.latency_median_ms:.2f}" for r in reports]),
        ("parse p95 (ms)", [f"{r.latency_p95_ms:.2f}" for r in reports]),
        ("fallback answers", [str(r.engine_fallbacks) for r in reports]),
    ]
    lines = [header] + [
        f"{label:<34}" + "".join(f"{v:>{width}}" for v in values) for label, values in rows
    ]
    lines += ["", "F1 per intent"]
    for intent in sorted({s.intent for r in reports for s in r.intents}):
        values = [
            next((f"{s.f1:.2f}" for s in r.intents if s.intent == intent), "-") for r in reports
        ]
        lines.append(f"  {intent:<32}" + "".join(f"{v:>{width}}" for v in values))
    return "\n".join(lines)
