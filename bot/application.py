"""The python-telegram-bot Application: building it and serving it until asked to stop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import sys
from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter
from telegram.ext import AIORateLimiter, Application

from bot.handlers import TelegramFront
from bot.messenger import retry_after_seconds
from bot.retention import RetentionService
from bot.runtime import Runtime
from bot.scheduler import Wakeups
from bot.settings import Telegram as TelegramConfig
from bot.telegram_http import AiohttpRequest
from bot.updates import PerPersonUpdateProcessor
from bot.webhook import WebhookReceiver

log = logging.getLogger(__name__)


def build_application(runtime: Runtime) -> tuple[Application, TelegramFront]:  # type: ignore[type-arg]
    """An Application talking to the Bot API server of TELEGRAM_API_URL."""
    env = runtime.settings.env
    telegram = runtime.settings.config.telegram
    if env.telegram_token is None:
        raise RuntimeError("TELEGRAM_BOT_TOKEN is not set")
    app = (
        Application.builder()
        .token(env.telegram_token)
        .base_url(f"{env.telegram_api_url}/bot")
        .base_file_url(f"{env.telegram_api_url}/file/bot")
        .rate_limiter(
            AIORateLimiter(overall_max_rate=telegram.max_messages_per_second, max_retries=3)
        )
        .concurrent_updates(PerPersonUpdateProcessor(telegram.concurrent_updates))
        .request(_request(telegram))
        .get_updates_request(_request(telegram, connections=1))
        .build()
    )
    dashboard = runtime.settings.config.dashboard
    front = TelegramFront(
        runtime.guide,
        runtime.escalator,
        runtime.follow_up,
        dashboard.base_url if dashboard.enabled else None,
    )
    front.install(app)
    return app, front


def _request(telegram: TelegramConfig, connections: int = 256) -> AiohttpRequest:
    """How python-telegram-bot reaches the Bot API: aiohttp, with the configured time-outs."""
    return AiohttpRequest(
        connection_pool_size=connections,
        connect_timeout=telegram.connect_timeout.total_seconds(),
        read_timeout=telegram.read_timeout.total_seconds(),
        write_timeout=telegram.read_timeout.total_seconds(),
    )


RESYNC_EVERY = 30.0
# python-telegram-bot removes the webhook again as polling starts, right after start-up did
# (see serve); a failure of that second call is tried again this many times (its own pauses,
# from 1 s up to 30 s), then ends the program.
BOOTSTRAP_RETRIES = 10
# How long a thread waiting for the interpreter lets the one running Python code keep it (the
# interpreter's default is 5 ms). The event loop, which answers people, shares the interpreter
# with the scheduler's threads (storing wake-ups) and SQLite's commit thread: when one of them
# is running Python, the loop waited up to 5 ms to get it back. Measured with 50 people at
# once on SQLite (three runs each): reply p50 9.7-10.2 ms -> 8.6-9.6 ms, p99 23-28 -> 19-25 ms.
SWITCH_INTERVAL = 0.0005


async def _keep_in_sync(runtime: Runtime, stop: asyncio.Event) -> None:
    """Every RESYNC_EVERY seconds, put back wake-ups lost while the database was unreachable."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RESYNC_EVERY)
        if stop.is_set():
            return
        try:
            created, removed = await runtime.escalator.resync()
        except Exception as error:  # tried again at the next round
            log.warning("could not check the wake-ups: %s", error)
            continue
        if created:
            log.warning("wake-ups resynced: %d restored, %d obsolete removed", created, removed)
        elif removed:
            # Only jobs of chains that are over (e.g. a reminder that crossed its chain's stop
            # stored its next wake-up again, or a cancel failed while the job store was out of
            # reach). Nothing is lost: such a wake-up finds the chain over. Tidied up here.
            log.info("wake-ups resynced: %d obsolete removed", removed)


def _freeze_what_start_up_built() -> None:
    """Leave what start-up built out of the garbage collector's full collections.

    The libraries' modules, the NLU model, the protocol and the texts live as long as the
    program, yet each full collection went through all of them again, with the event loop
    (everyone's replies) waiting: measured under `make bench` with 200 people on PostgreSQL,
    one took 102.6 ms while serving; frozen, 4.1 and 4.6 ms. What the program makes while it
    serves is collected as before; :func:`serve` undoes the freeze when it stops.
    """
    gc.collect()
    gc.freeze()


class Refused(Exception):
    """The Bot API server refused what the bot cannot serve without (its message says what)."""


class TokenRefused(Refused):
    """The Bot API server refused TELEGRAM_BOT_TOKEN (revoked, mistyped, or another server's)."""


async def _insist(
    call: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    url: str,
    method: str,
    undo: Callable[[], Awaitable[object]] | None = None,
) -> bool:
    """Make a start-up ``call`` to the Bot API server until it is answered.

    The program may start before the network or the server does (at boot, during a restart of
    a self-hosted server), and the server may fail a request now and then (a 5xx, a time-out, a
    dropped connection, a 429): each failure is logged and tried again after 1, 2, 4, 8, then
    every 10 s (or the server's retry_after). False if ``stop`` was set meanwhile. ``undo``
    runs after each failed try (closing what the try opened).

    A 404 or 401 is final: :class:`TokenRefused` for ``getMe``, the first call; for a later
    ``method``, a server without it (:class:`Refused`). So is a 400 (:class:`Refused`).
    """
    pause = 1.0
    while True:
        try:
            await call()
            return True
        except InvalidToken:
            if undo is not None:
                await undo()
            if method == "getMe":
                raise TokenRefused(
                    f"the Bot API server at {url} refused TELEGRAM_BOT_TOKEN"
                ) from None
            raise Refused(
                f"the Bot API server at {url} does not know {method}, which the bot needs"
            ) from None
        except BadRequest as error:
            if undo is not None:
                await undo()
            raise Refused(f"the Bot API server at {url} refused {method}: {error}") from None
        except (NetworkError, RetryAfter) as error:  # unreachable, timed out, 5xx, 429
            if undo is not None:
                await undo()
            wait = pause
            if isinstance(error, RetryAfter):
                wait = max(pause, retry_after_seconds(error))
            log.warning(
                "the Bot API server at %s does not answer %s (%s); trying again in %.0f s",
                url,
                method,
                error,
                wait,
            )
        try:
            await asyncio.wait_for(stop.wait(), wait)
            return False
        except TimeoutError:
            pause = min(pause * 2, 10.0)


async def serve(runtime: Runtime, stop: asyncio.Event, poll_timeout: int = 25) -> None:
    """Serve Telegram (polling or webhook) until ``stop`` is set."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    telegram = runtime.settings.config.telegram
    app, front = build_application(runtime)
    wakeups = Wakeups(
        runtime.settings.env.database_url, runtime.escalator.fire, clock=runtime.clock
    )
    runtime.escalator.wakeup = wakeups
    url = runtime.settings.env.telegram_api_url
    # Its connections are opened again at the next try.
    if not await _insist(app.bot.initialize, stop, url, "getMe", undo=app.bot.shutdown):
        return
    async with app:
        me = app.bot.username
        await app.start()
        # Aside: a refused or rate-limited menu must not hold up serving (see set_commands).
        menu = asyncio.create_task(front.set_commands(app))
        await runtime.escalator.interrupted()  # before any wake-up runs: see there
        await wakeups.start()
        resent, created, removed = await runtime.escalator.recover()
        log.info(
            "reminders: %d interrupted message(s) resent, %d wake-up(s) restored, %d obsolete",
            resent,
            created,
            removed,
        )
        retention = RetentionService(runtime.sessions, runtime.clock, runtime.settings.config)
        await retention.start(wakeups)
        # Before the first update is read: the collection it starts with keeps no one waiting.
        _freeze_what_start_up_built()
        updater = app.updater
        if updater is None:  # pragma: no cover - the builder always makes one
            raise RuntimeError("the application has no updater")
        receiver: WebhookReceiver | None = None
        resyncing: asyncio.Task[None] | None = None
        try:
            if telegram.mode == "webhook":
                secret = runtime.settings.env.webhook_secret
                if not telegram.webhook_url or not secret:
                    raise RuntimeError(
                        "webhook mode needs telegram.webhook_url in the config and "
                        "TELEGRAM_WEBHOOK_SECRET in the environment"
                    )
                # Our own receiver rather than PTB's: it logs and counts every refused request.
                receiver = WebhookReceiver(app, secret)
                await receiver.start(telegram.webhook_listen, telegram.webhook_port)
                hook = functools.partial(
                    app.bot.set_webhook,
                    telegram.webhook_url,
                    allowed_updates=Update.ALL_TYPES,
                    secret_token=secret,
                )
                if not await _insist(hook, stop, url, "setWebhook"):
                    return
                log.info("@%s serving webhook on %s", me, telegram.webhook_url)
            else:
                # python-telegram-bot removes any webhook before polling, but gives up at the
                # first failure of the server: removed here first, the way start-up insists.
                if not await _insist(app.bot.delete_webhook, stop, url, "deleteWebhook"):
                    return
                await updater.start_polling(
                    allowed_updates=Update.ALL_TYPES,
                    timeout=poll_timeout,
                    bootstrap_retries=BOOTSTRAP_RETRIES,
                )
                log.info("@%s polling %s", me, url)
            resyncing = asyncio.create_task(_keep_in_sync(runtime, stop))
            await stop.wait()
        finally:
            gc.unfreeze()
            menu.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await menu
            runtime.escalator.closing = True
            if resyncing is not None:
                if not stop.is_set():  # serving was cancelled: no resync to wait for
                    resyncing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await resyncing
            await runtime.escalator.settle()
            await wakeups.shutdown()
            if receiver is not None:
                await receiver.stop()
            elif updater.running:
                await updater.stop()
            await app.stop()
