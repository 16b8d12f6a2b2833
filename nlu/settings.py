"""Settings of the NLU: which engine, where Rasa is, how long to wait, the threshold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nlu.types import DEFAULT_THRESHOLD

Engine = Literal["embedded", "rasa"]
ENGINES: tuple[Engine, ...] = ("embedded", "rasa")


@dataclass(frozen=True, slots=True)
class NluSettings:
    """How to build the interpreter; a bad value fails at start-up naming the key."""

    engine: Engine = "embedded"
    rasa_url: str = "http://127.0.0.1:5005"
    timeout: float = 0.5
    threshold: float = DEFAULT_THRESHOLD
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        """Reject values that cannot work."""
        if self.engine not in ENGINES:
            raise ValueError(f"nlu.engine must be one of {ENGINES}, not {self.engine!r}")
        if not self.rasa_url.startswith(("http://", "https://")):
            raise ValueError(f"nlu.rasa_url must be an http(s) URL, not {self.rasa_url!r}")
        if not self.timeout > 0:
            raise ValueError(f"nlu.timeout must be positive, not {self.timeout!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"nlu.threshold must be between 0 and 1, not {self.threshold!r}")
