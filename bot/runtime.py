"""The composition root: builds every collaborator from the settings, once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock, SystemClock
from bot.escalation import Escalator
from bot.follow_up import FollowUp
from bot.guide import Guide
from bot.settings import ConfigError, Environment, Settings
from dialogues.protocol import Protocol, load_protocol
from nlu.interpreters import SafeInterpreter, build_interpreter
from nlu.settings import NluSettings
from storage.crypto import KeyRing, KeyRingError, resolve_key_ring
from storage.database import create_engine, migrate, session_factory
from storage.repositories import SchoolRecord, Schools


def key_ring(env: Environment) -> KeyRing:
    """The keys of SEXTO_ENCRYPTION_KEYS; without them, local mode's key file (made once).

    With a Telegram token and no keys the program refuses to start (ConfigError).
    """
    try:
        return resolve_key_ring(
            env.encryption_keys,
            production=env.telegram_token is not None,
            database_url=env.database_url,
        )
    except KeyRingError as error:
        raise ConfigError(str(error)) from None


@dataclass
class Runtime:
    """Everything a command needs, wired together."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    protocol: Protocol
    clock: Clock
    guide: Guide
    escalator: Escalator
    follow_up: FollowUp
    interpreter: SafeInterpreter

    @classmethod
    def create(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        """Wire the program from its settings."""
        clock = clock or SystemClock()
        engine = create_engine(settings.env.database_url, key_ring(settings.env))
        sessions = session_factory(engine)
        protocol = load_protocol(zone=settings.config.zone)
        escalator = Escalator(protocol, sessions, clock, settings.config)
        nlu = settings.config.nlu
        interpreter = build_interpreter(
            NluSettings(
                engine=nlu.engine,
                rasa_url=nlu.rasa_url,
                timeout=nlu.timeout.total_seconds(),
                threshold=nlu.threshold,
            )
        )
        guide = Guide(protocol, sessions, clock, settings.config, escalator, interpreter)
        escalator.guide = guide
        follow_up = FollowUp(protocol, sessions, clock)
        return cls(
            settings, engine, sessions, protocol, clock, guide, escalator, follow_up, interpreter
        )

    async def prepare_database(self) -> tuple[int, int]:
        """Migrate the schema and load the schools of config.yml; returns (added, updated)."""
        await migrate(self.engine)
        records = [
            SchoolRecord(s.id, s.name, s.board, s.station, s.address)
            for s in self.settings.config.schools
        ]
        async with self.sessions() as session, session.begin():
            return await Schools(session).sync(records)

    async def close(self) -> None:
        """Release the database connections and the NLU's."""
        await self.escalator.settle()
        await self.interpreter.aclose()
        await self.engine.dispose()
