"""NLU parse latency per engine, through the pipeline the bot uses (safety net, engine, guard).

Every example of the held-out file is parsed once, after an untimed warm-up parse; Rasa is
measured only when its server answers (``make rasa-start`` serves it on 127.0.0.1:5005).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from nlu.cli import rasa_reachable
from nlu.evaluation import evaluate
from nlu.interpreters import build_interpreter
from nlu.rasa_client import FallbackInterpreter
from nlu.settings import Engine, NluSettings
from nlu.training_data import load_training_data

HOLDOUT = Path(__file__).resolve().parent.parent / "nlu" / "tests" / "holdout.yml"
RASA_URL = "http://127.0.0.1:5005"


async def parse_latency(engine: Engine, rasa_url: str = RASA_URL) -> dict[str, Any]:
    """Median and p95 parse time (ms), accuracy, and how often Rasa fell back."""
    if engine == "rasa" and not rasa_reachable(rasa_url):
        return {"engine": engine, "skipped": f"no Rasa server at {rasa_url}"}
    examples = load_training_data([HOLDOUT]).examples
    interpreter = build_interpreter(NluSettings(engine=engine, rasa_url=rasa_url, timeout=5.0))
    try:
        await interpreter.parse("bonjour")
        inner = interpreter.engine
        if isinstance(inner, FallbackInterpreter):
            inner.fallbacks = 0
        report = await evaluate(interpreter, examples, engine=engine)
        if isinstance(inner, FallbackInterpreter):
            report = dataclasses.replace(report, engine_fallbacks=inner.fallbacks)
    finally:
        await interpreter.aclose()
    return {
        "engine": engine,
        "examples": report.examples,
        "parse_ms_median": round(report.latency_median_ms, 2),
        "parse_ms_p95": round(report.latency_p95_ms, 2),
        "accuracy": round(report.accuracy, 3),
        "fallbacks": report.engine_fallbacks,
    }
