"""The floor: a minimal python-telegram-bot echo bot, polled like the assistant.

It answers every typed message with the same text and every button press with a message, each
with one "Again" button, and on its own touches no database: what it costs is
python-telegram-bot, HTTP and the local Bot API server, nothing of ours. Configured like
``sexto run``: polling with a 25 s long poll, all update types, the default sequential update
processing.

With ``BENCH_ECHO_DATABASE`` (a PostgreSQL URL) it is the floor of a bot that records every
update in PostgreSQL before it answers, as the assistant does: for each update, one transaction
shaped like a step of the guide (read the chat's saved state, write the update and the reply to
a log, save the state, commit), with asyncpg alone, no ORM, no encryption and no logic.

    TELEGRAM_BOT_TOKEN=... TELEGRAM_API_URL=http://127.0.0.1:PORT python -m bench.echo
"""

from __future__ import annotations

import asyncio
import os
import signal

import asyncpg
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

AGAIN = InlineKeyboardMarkup([[InlineKeyboardButton("Again", callback_data="again")]])
DATABASE = "BENCH_ECHO_DATABASE"
TABLES = (
    "CREATE TABLE IF NOT EXISTS echo_state (chat_id bigint PRIMARY KEY, updates integer NOT NULL)",
    "CREATE TABLE IF NOT EXISTS echo_log (id bigserial PRIMARY KEY, chat_id bigint NOT NULL,"
    " at timestamptz NOT NULL DEFAULT now(), text text NOT NULL)",
)


class Log:
    """Each update and its reply, written durably before the reply is sent."""

    def __init__(self, pool: asyncpg.Pool | None) -> None:
        self.pool = pool

    async def record(self, chat_id: int, received: str, answer: str) -> None:
        """One transaction of five round trips, as a step of the guide: BEGIN, read the
        state, write both log rows, save the state, COMMIT (durable: the server's default)."""
        if self.pool is None:
            return
        async with self.pool.acquire() as connection, connection.transaction():
            updates = await connection.fetchval(
                "SELECT updates FROM echo_state WHERE chat_id = $1", chat_id
            )
            await connection.executemany(
                "INSERT INTO echo_log (chat_id, text) VALUES ($1, $2)",
                [(chat_id, received), (chat_id, answer)],
            )
            await connection.execute(
                "INSERT INTO echo_state (chat_id, updates) VALUES ($1, $2) ON CONFLICT (chat_id)"
                " DO UPDATE SET updates = excluded.updates",
                chat_id,
                (updates or 0) + 1,
            )


LOG = Log(None)


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Echo a typed message."""
    message = update.effective_message
    if message is not None and message.text:
        await LOG.record(message.chat.id, message.text, message.text)
        await message.reply_text(message.text, reply_markup=AGAIN, do_quote=False)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer a button press and say so."""
    query = update.callback_query
    if query is None or query.message is None:
        return
    await LOG.record(query.message.chat.id, query.data or "", "Pressed")
    await query.answer()
    await context.bot.send_message(query.message.chat.id, "Pressed", reply_markup=AGAIN)


async def serve(token: str, api_url: str) -> None:
    """Poll until SIGTERM or SIGINT."""
    url = os.environ.get(DATABASE)
    if url:
        # As many connections as the assistant keeps at most (storage.database.PG_POOL_SIZE).
        LOG.pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
        async with LOG.pool.acquire() as connection:
            for table in TABLES:
                await connection.execute(table)
    app = (
        Application.builder()
        .token(token)
        .base_url(f"{api_url}/bot")
        .base_file_url(f"{api_url}/file/bot")
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT, on_text))
    app.add_handler(CallbackQueryHandler(on_button))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with app:
        await app.start()
        updater = app.updater
        assert updater is not None
        await updater.start_polling(allowed_updates=Update.ALL_TYPES, timeout=25)
        try:
            await stop.wait()
        finally:
            await updater.stop()
            await app.stop()
            if LOG.pool is not None:
                await LOG.pool.close()


def main() -> None:
    """Command line: the token and the server from the environment."""
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    asyncio.run(serve(os.environ["TELEGRAM_BOT_TOKEN"], os.environ["TELEGRAM_API_URL"]))


if __name__ == "__main__":
    main()
