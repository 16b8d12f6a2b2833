"""The security suite reuses the dashboard's app and world and the end-to-end bot."""

from __future__ import annotations

from tests.dashboard.conftest import app, client, options, world
from tests.e2e.conftest import policy, telegram, telegram_options

__all__ = ["app", "client", "options", "policy", "telegram", "telegram_options", "world"]
