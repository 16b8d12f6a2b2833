"""SEXTO assistant: the Telegram shell, its command line and its composition root."""
