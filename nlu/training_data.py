"""Reader of Rasa 3.x NLU training data (YAML): examples, entities, synonyms, regexes, lookups."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from nlu.types import Entity

# [text](entity), [text](entity:value), [text]{"entity": "x", "value": "y", ...}
_MARKUP = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<short>[^)]+)\)|(?P<json>\{[^}]*\}))")


class TrainingDataError(ValueError):
    """The training data is not valid Rasa NLU YAML."""


@dataclass(frozen=True, slots=True)
class Example:
    """One training or test message: clean text, its intent and entity spans."""

    text: str
    intent: str
    entities: tuple[Entity, ...] = ()


@dataclass(frozen=True, slots=True)
class TrainingData:
    """Everything read from one or more Rasa NLU files."""

    examples: tuple[Example, ...] = ()
    synonyms: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    regexes: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    lookups: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def intents(self) -> tuple[str, ...]:
        """Intent names in order of first appearance."""
        return tuple(dict.fromkeys(e.intent for e in self.examples))

    def by_intent(self, intent: str) -> tuple[Example, ...]:
        """Examples of one intent."""
        return tuple(e for e in self.examples if e.intent == intent)


def parse_example(markup: str, synonyms: Mapping[str, str] | None = None) -> Example:
    """Turn one marked-up example into clean text with entity spans (intent left empty).

    Entity values follow Rasa: an explicit value, else a synonym of the text, else the text.
    """
    synonyms = synonyms or {}
    parts: list[str] = []
    entities: list[Entity] = []
    position = 0
    length = 0
    for match in _MARKUP.finditer(markup):
        before = markup[position : match.start()]
        parts.append(before)
        length += len(before)
        text = match["text"]
        name, value = _entity_of(match, markup)
        if value is None:
            value = synonyms.get(text.lower(), text)
        entities.append(Entity(name=name, value=value, start=length, end=length + len(text)))
        parts.append(text)
        length += len(text)
        position = match.end()
    parts.append(markup[position:])
    return Example(text="".join(parts).strip(), intent="", entities=tuple(entities))


def _entity_of(match: re.Match[str], markup: str) -> tuple[str, str | None]:
    """Entity name and explicit value (if any) of one markup match."""
    if match["short"] is not None:
        name, _, value = match["short"].partition(":")
        return name.strip(), (value.strip() or None)
    try:
        spec = json.loads(match["json"])
    except json.JSONDecodeError as error:
        raise TrainingDataError(f"bad entity markup in {markup!r}: {error}") from error
    if not isinstance(spec, dict) or not isinstance(spec.get("entity"), str):
        raise TrainingDataError(f"entity markup without an entity name in {markup!r}")
    value = spec.get("value")
    return spec["entity"], (str(value) if value is not None else None)


def _example_lines(block: Any, where: str) -> list[str]:
    """The example strings of a block: a "- ..." literal or a list of {text: ...}."""
    if isinstance(block, str):
        lines = []
        for raw in block.splitlines():
            line = raw.strip()
            if not line:
                continue
            if not line.startswith("- "):
                raise TrainingDataError(f"{where}: example does not start with '- ': {line!r}")
            lines.append(line[2:].strip())
        return lines
    if isinstance(block, list):
        texts = [item.get("text") if isinstance(item, dict) else None for item in block]
        if all(isinstance(text, str) for text in texts):
            return [str(text).strip() for text in texts]
    raise TrainingDataError(f"{where}: examples must be a '- ' list or items with 'text'")


def _read_yaml(path: Path) -> Any:
    """A YAML file's document; what is wrong with it, with its place, if it cannot be read."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise TrainingDataError(
            f"{path}: not UTF-8 text (byte {error.start} cannot be decoded)"
        ) from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        place = f", line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise TrainingDataError(f"{path}: not valid YAML{place}: {problem}") from error


def load_training_data(paths: Iterable[Path]) -> TrainingData:
    """Read Rasa NLU YAML files (nlu: intent / synonym / regex / lookup sections)."""
    blocks: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        document = _read_yaml(path) or {}
        if not isinstance(document, dict):
            raise TrainingDataError(f"{path}: not a Rasa NLU file (a mapping with an 'nlu' list)")
        sections = document.get("nlu") or []
        if not isinstance(sections, list):
            raise TrainingDataError(f"{path}: 'nlu' must be a list")
        blocks.extend((str(path), section) for section in sections)

    synonyms: dict[str, str] = {}
    regexes: dict[str, tuple[str, ...]] = {}
    lookups: dict[str, tuple[str, ...]] = {}
    pending: list[tuple[str, str, str]] = []
    for where, section in blocks:
        if not isinstance(section, dict):
            raise TrainingDataError(f"{where}: each nlu item must be a mapping")
        lines = _example_lines(section.get("examples", ""), where)
        if "intent" in section:
            pending.extend((str(section["intent"]), line, where) for line in lines)
        elif "synonym" in section:
            synonyms.update({line.lower(): str(section["synonym"]) for line in lines})
        elif "regex" in section:
            name = str(section["regex"])
            regexes[name] = regexes.get(name, ()) + tuple(lines)
        elif "lookup" in section:
            name = str(section["lookup"])
            lookups[name] = lookups.get(name, ()) + tuple(lines)
        else:
            raise TrainingDataError(f"{where}: unknown nlu item {sorted(section)}")

    examples: list[Example] = []
    for intent, line, _where in pending:
        example = parse_example(line, synonyms)
        examples.append(Example(example.text, intent, example.entities))
        # As in Rasa, an annotated value is a synonym of its text.
        for entity in example.entities:
            text = example.text[entity.start : entity.end]
            if entity.value != text:
                synonyms.setdefault(text.lower(), entity.value)
    return TrainingData(
        examples=tuple(examples),
        synonyms=MappingProxyType(synonyms),
        regexes=MappingProxyType(regexes),
        lookups=MappingProxyType(lookups),
    )


def data_files(directory: Path) -> list[Path]:
    """The YAML files of a Rasa data directory, sorted so that hashes are stable."""
    return sorted(p for p in directory.rglob("*") if p.suffix in {".yml", ".yaml"})
