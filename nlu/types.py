"""Intent names, parse results and the interpreter interface shared by every engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

START_INCIDENT: Final = "start_incident"
EMERGENCY: Final = "emergency"
CONFIRM_911_CALLED: Final = "confirm_911_called"
CONFIRM_DEVICES_SECURED: Final = "confirm_devices_secured"
CONFIRM_KIT_COLLECTED: Final = "confirm_kit_collected"
AFFIRM: Final = "affirm"
DENY: Final = "deny"
ASK_NEXT_STEP: Final = "ask_next_step"
ASK_VIEW_IMAGE: Final = "ask_view_image"
ASK_SHARE_IMAGE: Final = "ask_share_image"
ASK_COPY_IMAGE: Final = "ask_copy_image"
ASK_DELETE_IMAGE: Final = "ask_delete_image"
REPORT_RECEIVED_IMAGE: Final = "report_received_image"
ASK_DEVICE_HANDLING: Final = "ask_device_handling"
ASK_RETURN_DEVICE: Final = "ask_return_device"
ASK_CALL_911: Final = "ask_call_911"
ASK_PARENTS: Final = "ask_parents"
ASK_VICTIM_SUPPORT: Final = "ask_victim_support"
ASK_DPJ: Final = "ask_dpj"
ASK_LEGAL: Final = "ask_legal"
ASK_CONFIDENTIALITY: Final = "ask_confidentiality"
GREET: Final = "greet"
THANK: Final = "thank"
OUT_OF_SCOPE: Final = "out_of_scope"
NLU_FALLBACK: Final = "nlu_fallback"

INTENTS: Final[tuple[str, ...]] = (
    START_INCIDENT,
    EMERGENCY,
    CONFIRM_911_CALLED,
    CONFIRM_DEVICES_SECURED,
    CONFIRM_KIT_COLLECTED,
    AFFIRM,
    DENY,
    ASK_NEXT_STEP,
    ASK_VIEW_IMAGE,
    ASK_SHARE_IMAGE,
    ASK_COPY_IMAGE,
    ASK_DELETE_IMAGE,
    REPORT_RECEIVED_IMAGE,
    ASK_DEVICE_HANDLING,
    ASK_RETURN_DEVICE,
    ASK_CALL_911,
    ASK_PARENTS,
    ASK_VICTIM_SUPPORT,
    ASK_DPJ,
    ASK_LEGAL,
    ASK_CONFIDENTIALITY,
    GREET,
    THANK,
    OUT_OF_SCOPE,
)
CONFIRM_INTENTS: Final[tuple[str, ...]] = (
    CONFIRM_911_CALLED,
    CONFIRM_DEVICES_SECURED,
    CONFIRM_KIT_COLLECTED,
)

EVENT_NUMBER: Final = "event_number"
DEVICE_COUNT: Final = "device_count"
ENTITY_NAMES: Final[tuple[str, ...]] = (EVENT_NUMBER, DEVICE_COUNT)

DEFAULT_THRESHOLD: Final = 0.4


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity found in a message: its name, normalised value and span in the text."""

    name: str
    value: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Parse:
    """What an interpreter understood of one message; ranking is best first.

    ``stated``: a confirmation the message makes on the way to its request ("I called 911.
    Now what" is ask_next_step, stating confirm_911_called).
    """

    text: str
    intent: str
    confidence: float
    ranking: tuple[tuple[str, float], ...]
    entities: tuple[Entity, ...]
    stated: str | None = None

    def entity(self, name: str) -> str | None:
        """Return the value of the first entity with this name, if any."""
        return next((e.value for e in self.entities if e.name == name), None)


class Interpreter(Protocol):
    """Anything that turns a user's message into a Parse."""

    async def parse(self, text: str) -> Parse:
        """Understand one message."""
        ...


def decide(
    text: str,
    ranking: tuple[tuple[str, float], ...],
    entities: tuple[Entity, ...],
    threshold: float,
) -> Parse:
    """Build a Parse from a ranking: the top intent, or nlu_fallback below the threshold.

    With nlu_fallback the confidence stays the top intent's score and the ranking is kept,
    so callers can still see what the engine hesitated between.
    """
    ordered = tuple(sorted(ranking, key=lambda item: item[1], reverse=True))
    if not ordered or ordered[0][1] < threshold:
        confidence = ordered[0][1] if ordered else 0.0
        return Parse(text, NLU_FALLBACK, confidence, ordered, entities)
    return Parse(text, ordered[0][0], ordered[0][1], ordered, entities)
