"""The dashboard's settings: where it listens, its public address, sessions and cookies."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.settings import Config, ConfigError

SECRET_VARIABLE = "SEXTO_DASHBOARD_SECRET"  # noqa: S105 - the name, not the value
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class DashboardOptions:
    """How the dashboard is served (``config.yml`` section ``dashboard``)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = "http://127.0.0.1:8080"
    session_lifetime: timedelta = timedelta(hours=8)
    secure_cookies: bool | None = None

    @property
    def secure(self) -> bool:
        """Whether cookies carry the Secure flag (by default: when the address is https)."""
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.base_url.startswith("https://")

    @classmethod
    def from_config(cls, config: Config) -> DashboardOptions:
        """The ``dashboard`` section of the config, or the defaults when it has none."""
        # getattr: the section is bot.settings.Dashboard, added to Config with the dashboard.
        section: Any = getattr(config, "dashboard", None)
        if section is None:
            return cls()
        return cls(
            enabled=section.enabled,
            host=section.host,
            port=section.port,
            base_url=str(section.base_url).rstrip("/"),
            session_lifetime=section.session_lifetime,
            secure_cookies=section.secure_cookies,
        )


def dashboard_secret(value: str | None, *, local_mode: bool) -> bytes:
    """The key signing cookies: from the environment, or random per run in local mode."""
    value = (value or "").strip()
    if not value:
        if local_mode:
            return secrets.token_bytes(32)
        raise ConfigError(f"{SECRET_VARIABLE}: required to serve the dashboard with Telegram")
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(f"{SECRET_VARIABLE}: at least {MIN_SECRET_LENGTH} characters, please")
    return value.encode()
