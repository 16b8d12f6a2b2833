"""Natural-language understanding: intents from free text (FR/EN).

Light on purpose: importing `nlu` loads only the types and settings. The engines live in
`nlu.embedded` and `nlu.rasa_client`; `nlu.interpreters.build_interpreter` composes them.
"""

from nlu.settings import NluSettings
from nlu.types import INTENTS, NLU_FALLBACK, Entity, Interpreter, Parse

__all__ = ["INTENTS", "NLU_FALLBACK", "Entity", "Interpreter", "NluSettings", "Parse"]
