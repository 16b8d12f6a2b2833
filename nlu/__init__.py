"""Natural-language understanding: intents from free text (FR/EN)."""
