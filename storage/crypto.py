"""Encryption at rest: the key ring, the encrypted column types, and where the keys come from.

Transcripts and free text are stored as Fernet tokens (AES-128-CBC with an HMAC-SHA256, from
the ``cryptography`` library): the database alone reveals nothing of the text, and a token that
was tampered with or that no key opens is refused rather than read as garbage.

**Keys.** A :class:`KeyRing` holds Fernet keys newest first (a ``MultiFernet``): the first key
encrypts, every key decrypts. Rotating is: put a new key first (``SEXTO_ENCRYPTION_KEYS=new,old``),
re-encrypt every value with it (``sexto keys rotate``), then drop the old key. In production
the keys come from ``SEXTO_ENCRYPTION_KEYS``; in local mode (no Telegram token) without it, from a
key file created beside the SQLite database with owner-only permissions (:func:`resolve_key_ring`).

**How the column types find the keys.** A ``TypeDecorator`` only sees the *dialect* of the
connection it converts values for, and every engine has a dialect instance of its own. So the
key ring is bound to the engine when the engine is created
(``storage.database.create_engine(url, keys=ring)`` calls :func:`bind_key_ring`), in a
registry keyed weakly by that dialect: each engine reads and writes with its own keys (tests
run many engines with different keys side by side), nothing is looked up from the process
environment at query time, and the entry goes away with the engine. The alternatives do not
fit: a module-level key is one key for every engine; a context variable is not seen by
callbacks started elsewhere (the scheduler's wake-ups, tasks created before it was set); and
execution options never reach a type's bind and result processors. An engine created without
keys refuses to read or write an encrypted column, with a message saying so.

Encrypted values cannot be compared or sorted in SQL (the same text encrypts differently each
time): only ``IS NULL`` tests are allowed; filter in Python after reading.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text, TypeDecorator
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import operators

ENVIRONMENT_VARIABLE = "SEXTO_ENCRYPTION_KEYS"
DEFAULT_KEY_FILE = Path("var/sexto.key")
GENERATE_HINT = "make one with `sexto keys generate`"


class KeyRingError(ValueError):
    """The encryption keys are missing or unusable (the message says which and how to fix it)."""


class DecryptionError(Exception):
    """A stored value cannot be decrypted: a wrong key, or the key that wrote it is missing."""


class KeyRing:
    """Fernet keys, newest first: the first encrypts, every one decrypts."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise KeyRingError(f"no encryption key ({GENERATE_HINT})")
        fernets = []
        for number, key in enumerate(keys, 1):
            try:
                fernets.append(Fernet(key))
            except ValueError:
                raise KeyRingError(
                    f"encryption key {number} of {len(keys)} is not a Fernet key "
                    f"(32 url-safe base64-encoded bytes; {GENERATE_HINT})"
                ) from None
        self._newest = fernets[0]
        self._all = MultiFernet(fernets)
        self.size = len(fernets)

    def __repr__(self) -> str:
        return f"KeyRing({self.size} key(s))"

    def encrypt(self, plaintext: str) -> str:
        """A token for ``plaintext``, made with the newest key."""
        return self._newest.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The plaintext of a token made with any key of the ring."""
        try:
            return self._all.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise DecryptionError(self._refusal()) from None

    def is_current(self, token: str) -> bool:
        """Whether the newest key made this token (nothing to rotate)."""
        try:
            self._newest.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeError):
            return False
        return True

    def rotate(self, token: str) -> str:
        """The same plaintext, encrypted again with the newest key."""
        try:
            return self._all.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise DecryptionError(self._refusal()) from None

    def opens(self, token: str) -> bool:
        """Whether some key of the ring opens this token."""
        try:
            self._all.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeError):
            return False
        return True

    def _refusal(self) -> str:
        return (
            f"cannot decrypt a stored value: none of the {self.size} encryption key(s) in use "
            f"opens it. The key is wrong, or the key that encrypted it is missing from "
            f"{ENVIRONMENT_VARIABLE} (keep the old keys after the new one until "
            f"`sexto keys rotate` has run)"
        )


def generate_key() -> str:
    """A new random Fernet key, as text."""
    return Fernet.generate_key().decode("ascii")


def parse_keys(text: str) -> tuple[str, ...]:
    """Keys written comma- or line-separated, newest first; each must be a Fernet key."""
    keys = tuple(part.strip() for part in text.replace("\n", ",").split(",") if part.strip())
    if keys:
        KeyRing(keys)  # raises KeyRingError naming the bad key's position
    return keys


# ---- the key ring of each engine ----------------------------------------------------------------

_RINGS: weakref.WeakKeyDictionary[Dialect, KeyRing] = weakref.WeakKeyDictionary()


def bind_key_ring(engine: AsyncEngine | Engine, ring: KeyRing) -> None:
    """Make ``engine`` encrypt and decrypt its encrypted columns with ``ring``."""
    _RINGS[engine.dialect] = ring


def key_ring_of(dialect: Dialect) -> KeyRing | None:
    """The key ring bound to the engine of this dialect, if any."""
    return _RINGS.get(dialect)


def _ring(dialect: Dialect) -> KeyRing:
    ring = _RINGS.get(dialect)
    if ring is None:
        raise DecryptionError(
            "this database engine has no encryption keys: create it with "
            "storage.database.create_engine(url, keys=...) to read or write encrypted columns"
        )
    return ring


# ---- column types -------------------------------------------------------------------------------

_NULL_TESTS = (operators.is_, operators.is_not, operators.eq, operators.ne)


class _Sealed(TypeDecorator.Comparator[Any]):
    """Refuses SQL comparisons of encrypted values, except tests for NULL."""

    def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
        if op in _NULL_TESTS and all(value is None for value in other):
            return super().operate(op, *other, **kwargs)
        raise TypeError(
            f"{self.expr} is encrypted: it cannot be compared or sorted in SQL "
            "(only IS NULL); filter in Python after reading"
        )

    def reverse_operate(self, op: Any, other: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{self.expr} is encrypted: it cannot be used in SQL expressions")


class EncryptedText(TypeDecorator[str]):
    """Text stored as a Fernet token (a Text column); NULL stays NULL."""

    impl = Text
    cache_ok = True
    comparator_factory = _Sealed

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        """Encrypt with the newest key of the engine's ring."""
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"an encrypted text column takes a str, not {type(value).__name__}")
        return _ring(dialect).encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        """Decrypt with any key of the engine's ring."""
        return None if value is None else _ring(dialect).decrypt(value)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON value serialised, then stored as a Fernet token (a Text column)."""

    impl = Text
    cache_ok = True
    comparator_factory = _Sealed

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        """Serialise to JSON, then encrypt."""
        if value is None:
            return None
        return _ring(dialect).encrypt(json.dumps(value, ensure_ascii=False))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        """Decrypt, then parse the JSON."""
        return None if value is None else json.loads(_ring(dialect).decrypt(value))


# ---- where the keys come from -------------------------------------------------------------------


def key_file_for(database_url: str) -> Path:
    """Local mode's key file: beside a SQLite database file, else ``var/sexto.key``."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        return DEFAULT_KEY_FILE
    database = url.database or ""
    in_a_file = database not in ("", ":memory:") and not database.startswith("file:")
    if url.get_backend_name() == "sqlite" and in_a_file:
        return Path(database).with_suffix(".key")
    return DEFAULT_KEY_FILE


def _read_key_file(path: Path) -> tuple[str, ...]:
    try:
        status = path.stat()
    except OSError as error:
        raise KeyRingError(f"cannot read the key file {path}: {error.strerror}") from None
    if not path.is_file():
        raise KeyRingError(f"the key file {path} is not a regular file")
    if status.st_mode & 0o077:
        raise KeyRingError(
            f"the key file {path} can be read by other users (mode "
            f"{status.st_mode & 0o777:04o}); make it private with: chmod 600 {path}"
        )
    try:
        keys = parse_keys(path.read_text(encoding="ascii"))
    except OSError as error:
        raise KeyRingError(f"cannot read the key file {path}: {error.strerror}") from None
    except (KeyRingError, UnicodeError) as error:
        raise KeyRingError(f"the key file {path}: {error}") from None
    if not keys:
        raise KeyRingError(f"the key file {path} is empty (remove it to make a new key)")
    return keys


def local_keys(path: Path) -> tuple[str, ...]:
    """The keys of a local key file, created with a new key (mode 0600) if it is missing."""
    if path.exists():
        return _read_key_file(path)
    try:
        _create_key_file(path)
    except OSError as error:
        raise KeyRingError(
            f"cannot create the key file {path} (beside the SQLite database): "
            f"{error.strerror or error}"
        ) from None
    return _read_key_file(path)


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under a private temporary name, then linked into place: the key file
    # appears at once, complete and owner-only, and a concurrent start keeps the first one.
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(generate_key() + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: keep theirs
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)


def resolve_key_ring(keys: Sequence[str], *, production: bool, database_url: str) -> KeyRing:
    """The program's key ring: the given keys; else, only in local mode, the local key file."""
    if keys:
        return KeyRing(keys)
    if production:
        raise KeyRingError(
            f"{ENVIRONMENT_VARIABLE} is not set: with TELEGRAM_BOT_TOKEN the transcripts are "
            f"encrypted with a key from the environment. Make one with `sexto keys generate` "
            f"and set {ENVIRONMENT_VARIABLE}=<the key> (keep it secret, and keep a copy: "
            f"without it the transcripts cannot be read)"
        )
    return KeyRing(local_keys(key_file_for(database_url)))


def key_ring_from_environment(environ: Mapping[str, str], database_url: str) -> KeyRing:
    """The key ring the program would use with this environment (for Alembic run by hand)."""
    return resolve_key_ring(
        parse_keys(environ.get(ENVIRONMENT_VARIABLE, "")),
        production=bool(environ.get("TELEGRAM_BOT_TOKEN", "").strip()),
        database_url=database_url,
    )
