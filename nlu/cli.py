"""Command line of the NLU: `nlu evaluate`, `nlu compare`, `nlu parse` (a click group)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import click
import httpx

from nlu.evaluation import Report, evaluate, format_comparison, format_report
from nlu.interpreters import SafeInterpreter, build_interpreter
from nlu.rasa_client import FallbackInterpreter
from nlu.settings import ENGINES, Engine, NluSettings
from nlu.training_data import TrainingDataError, load_training_data
from nlu.types import DEFAULT_THRESHOLD, INTENTS, NLU_FALLBACK

DEFAULT_RASA_URL = NluSettings().rasa_url


def rasa_reachable(url: str, timeout: float = 2.0) -> bool:
    """Whether a Rasa server answers GET /status at this URL."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/status", timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return False
    return response.status_code == httpx.codes.OK


async def _run_evaluation(settings: NluSettings, file: Path) -> Report:
    """Build the bot's pipeline for these settings and evaluate it on a Rasa NLU file."""
    try:
        examples = load_training_data([file]).examples
    except TrainingDataError as error:
        raise click.ClickException(str(error)) from error
    if not examples:
        raise click.ClickException(f"no labelled examples in {file}")
    unknown = sorted({e.intent for e in examples} - {*INTENTS, NLU_FALLBACK})
    if unknown:
        count = sum(e.intent in unknown for e in examples)
        click.echo(
            f"warning: {file}: {count} example(s) labelled with intents that are not in the "
            f"catalogue, so always counted as misses: {', '.join(unknown)}",
            err=True,
        )
    interpreter = build_interpreter(settings)
    try:
        await interpreter.parse("bonjour")  # warm-up, untimed (Rasa's first call is slow)
        engine = interpreter.engine
        if isinstance(engine, FallbackInterpreter):
            engine.fallbacks = 0
        report = await evaluate(interpreter, examples, engine=settings.engine)
        if isinstance(engine, FallbackInterpreter):
            report = dataclasses.replace(report, engine_fallbacks=engine.fallbacks)
        return report
    finally:
        await interpreter.aclose()


def _settings(
    engine: str, rasa_url: str, timeout: float, threshold: float, cache_dir: Path | None
) -> NluSettings:
    """Settings from the command's options."""
    chosen: Engine = "rasa" if engine == "rasa" else "embedded"
    return NluSettings(
        engine=chosen,
        rasa_url=rasa_url,
        timeout=timeout,
        threshold=threshold,
        cache_dir=cache_dir,
    )


_file_argument = click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
_rasa_url_option = click.option(
    "--rasa-url", default=DEFAULT_RASA_URL, show_default=True, help="Rasa server (rasa engine)."
)
_timeout_option = click.option(
    "--timeout", default=NluSettings().timeout, show_default=True, help="Rasa timeout (s)."
)
_threshold_option = click.option(
    "--threshold", default=DEFAULT_THRESHOLD, show_default=True, help="Fallback threshold."
)
_cache_option = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the embedded model is cached [default: ~/.cache/sexto/nlu].",
)


@click.group(name="nlu")
def nlu() -> None:
    """Natural-language understanding: evaluate and try the engines."""


@nlu.command(name="evaluate")
@_file_argument
@click.option("--engine", type=click.Choice(ENGINES), default="embedded", show_default=True)
@_rasa_url_option
@_timeout_option
@_threshold_option
@_cache_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def evaluate_command(
    file: Path,
    engine: str,
    rasa_url: str,
    timeout: float,
    threshold: float,
    cache_dir: Path | None,
    as_json: bool,
) -> None:
    """Score an engine (safety net included) on a Rasa-format file of labelled examples."""
    if engine == "rasa" and not rasa_reachable(rasa_url):
        raise click.ClickException(
            f"no Rasa server answers at {rasa_url} (start one with `make rasa-start`)"
        )
    settings = _settings(engine, rasa_url, timeout, threshold, cache_dir)
    report = asyncio.run(_run_evaluation(settings, file))
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        click.echo(format_report(report))


@nlu.command(name="compare")
@_file_argument
@_rasa_url_option
@_timeout_option
@_threshold_option
@_cache_option
def compare_command(
    file: Path, rasa_url: str, timeout: float, threshold: float, cache_dir: Path | None
) -> None:
    """Both engines side by side (Rasa only if its server answers)."""
    embedded = _settings("embedded", rasa_url, timeout, threshold, cache_dir)
    reports = [asyncio.run(_run_evaluation(embedded, file))]
    if rasa_reachable(rasa_url):
        rasa = _settings("rasa", rasa_url, timeout, threshold, cache_dir)
        reports.append(asyncio.run(_run_evaluation(rasa, file)))
    else:
        click.echo(f"rasa: no server answers at {rasa_url}; start one with `make rasa-start`\n")
    click.echo(format_comparison(reports))
    for report in reports:
        click.echo("")
        click.echo(format_report(report, misses=0))


@nlu.command(name="parse")
@click.argument("text", nargs=-1, required=True)
@click.option("--engine", type=click.Choice(ENGINES), default="embedded", show_default=True)
@_rasa_url_option
@_timeout_option
@_threshold_option
@_cache_option
def parse_command(
    text: tuple[str, ...],
    engine: str,
    rasa_url: str,
    timeout: float,
    threshold: float,
    cache_dir: Path | None,
) -> None:
    """Show what the pipeline understands of one message, as JSON."""

    async def run() -> dict[str, Any]:
        """Parse once and close the interpreter."""
        interpreter: SafeInterpreter = build_interpreter(
            _settings(engine, rasa_url, timeout, threshold, cache_dir)
        )
        try:
            parse = await interpreter.parse(" ".join(text))
        finally:
            await interpreter.aclose()
        data = dataclasses.asdict(parse)
        data["ranking"] = data["ranking"][:5]
        return data

    click.echo(json.dumps(asyncio.run(run()), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    nlu()
