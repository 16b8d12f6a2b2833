"""The webhook without its secret: 403, logged with address and path (not the header), counted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.settings import Config, ConfigError, Environment
from tests.support.webhook import Hook, text_update, webhook_bot

SECRET = "the-real-webhook-secret_0123456789"
GUESS = "a-guessed-secret-value_987654321"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


@pytest.fixture
async def hook(config: Config, tmp_path: Path) -> AsyncIterator[Hook]:
    async with webhook_bot(config, tmp_path, SECRET) as running:
        yield running


async def test_requests_without_the_secret_get_403_and_are_logged_and_counted(
    hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    [registered] = hook.server.calls_of("setWebhook")
    assert registered.params["secret_token"] == SECRET
    hook.server.add_user(901, "Curious", language_code="en", started=True)
    async with httpx.AsyncClient() as client:
        missing = await client.post(hook.url, json=text_update(1, 901, "/incident"))
        wrong = await client.post(
            hook.url, json=text_update(2, 901, "/status"), headers={HEADER: GUESS}
        )
        right = await client.post(hook.url, json=text_update(3, 901), headers={HEADER: SECRET})
    assert (missing.status_code, wrong.status_code, right.status_code) == (403, 403, 200)
    reply = await hook.server.wait_for_message(901)
    assert "reserved for staff trained" in reply["text"]
    await asyncio.sleep(0.3)
    assert len(hook.server.sent_messages(901)) == 1  # the refused requests did nothing

    refusals = [
        r.getMessage()
        for r in caplog.records
        if r.name == "bot.webhook" and r.levelno == logging.WARNING
    ]
    assert refusals == [
        "webhook request refused (no secret token) from 127.0.0.1 to /telegram: 1 refused so far",
        "webhook request refused (wrong secret token) from 127.0.0.1 to /telegram: "
        "2 refused so far",
    ]
    await hook.shut()
    assert "webhook stopped: 2 request(s) refused for want of the secret" in caplog.messages
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert GUESS not in everything
    assert SECRET not in everything


async def test_other_methods_paths_and_unreadable_bodies_are_refused(hook: Hook) -> None:
    base = hook.url.rsplit("/", 1)[0]
    async with httpx.AsyncClient() as client:
        assert (await client.get(hook.url, headers={HEADER: SECRET})).status_code == 405
        assert (await client.post(f"{base}/other", headers={HEADER: SECRET})).status_code == 404
        garbage = await client.post(hook.url, content=b"{not json", headers={HEADER: SECRET})
        assert garbage.status_code == 400
        empty = await client.post(hook.url, json={}, headers={HEADER: SECRET})
        assert empty.status_code == 400
        # A guess as long as the secret, or the secret with one character changed: refused.
        for guess in (SECRET[:-1] + "x", SECRET.upper(), SECRET[:16], "é" * len(SECRET)):
            headers = {HEADER: guess.encode()}  # raw bytes, Latin-1 or not
            response = await client.post(hook.url, json=text_update(9, 901), headers=headers)
            assert response.status_code == 403, guess
    hook.server.add_user(902, "Curious", language_code="en", started=True)
    async with httpx.AsyncClient() as client:
        served = await client.post(hook.url, json=text_update(10, 902), headers={HEADER: SECRET})
    assert served.status_code == 200  # still serving after all that
    await hook.server.wait_for_message(902)


@pytest.mark.parametrize(
    "secret", ["short", "has spaces in it, sixteen+", "ünïcödé-is-not-allowed-here", "x" * 257]
)
def test_a_weak_or_malformed_webhook_secret_stops_the_program(secret: str) -> None:
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET: 16 to 256 characters"):
        Environment.from_environ({"TELEGRAM_WEBHOOK_SECRET": secret})
    assert Environment.from_environ({"TELEGRAM_WEBHOOK_SECRET": SECRET}).webhook_secret == SECRET
