"""The floor: a minimal python-telegram-bot echo bot, polled like the assistant.

It answers every typed message with the same text and every button press with a message, each
with one "Again" button, and touches no database: what it costs is python-telegram-bot, HTTP
and the local Bot API server, nothing of ours. Configured like ``sexto run``: polling with a
25 s long poll, all update types, the default sequential update processing.

    TELEGRAM_BOT_TOKEN=... TELEGRAM_API_URL=http://127.0.0.1:PORT python -m bench.echo
"""

from __future__ import annotations

import asyncio
import os
import signal

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

AGAIN = InlineKeyboardMarkup([[InlineKeyboardButton("Again", callback_data="again")]])


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Echo a typed message."""
    message = update.effective_message
    if message is not None and message.text:
        await message.reply_text(message.text, reply_markup=AGAIN, do_quote=False)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer a button press and say so."""
    query = update.callback_query
    if query is None or query.message is None:
        return
    await query.answer()
    await context.bot.send_message(query.message.chat.id, "Pressed", reply_markup=AGAIN)


async def serve(token: str, api_url: str) -> None:
    """Poll until SIGTERM or SIGINT."""
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


def main() -> None:
    """Command line: the token and the server from the environment."""
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    asyncio.run(serve(os.environ["TELEGRAM_BOT_TOKEN"], os.environ["TELEGRAM_API_URL"]))


if __name__ == "__main__":
    main()
