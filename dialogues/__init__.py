"""The SEXTO protocol as data, and the pure engine that walks it."""
