"""The pieces: safe bot messages, delays, charts, options and translations."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from bot.settings import ConfigError, parse_config
from dashboard.charts import bar_chart
from dashboard.options import DashboardOptions, dashboard_secret
from dashboard.pages import KINDS
from dashboard.presentation import button_label, duration, plain, telegram_html
from dashboard.reports import latin
from dashboard.simulator import COMMANDS
from dashboard.statistics import histogram, months_between, spread
from dashboard.texts import TEXTS, Translator
from dialogues.protocol import load_protocol
from storage.models import EscalationKind, EventKind, Role
from storage.repositories import SORTS
from tests.conftest import TEST_CONFIG

TEMPLATES = Path(__file__).resolve().parents[2] / "dashboard" / "templates"
SOURCES = Path(__file__).resolve().parents[2] / "dashboard"


@pytest.mark.parametrize(
    ("telegram", "shown"),
    [
        ("<b>Call 911</b> now", "<b>Call 911</b> now"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ('<a href="javascript:x">link</a>', "&lt;a href=&#34;javascript:x&#34;&gt;link&lt;/a&gt;"),
        ("<b>unclosed", "<b>unclosed</b>"),
        ("</i>stray", "stray"),
        ("<i>x <b>y</b></i>", "<i>x <b>y</b></i>"),
        ("R&amp;D", "R&amp;D"),
    ],
)
def test_bot_messages_keep_only_bold_and_italic(telegram: str, shown: str) -> None:
    assert str(telegram_html(telegram)) == shown


def test_plain_text_of_a_bot_message() -> None:
    assert plain("<b>Hi</b> &lt;you&gt; &amp; <i>me</i>") == "Hi <you> & me"


def test_buttons_are_shown_by_their_label() -> None:
    protocol = load_protocol()
    assert button_label(protocol, "3:danger:no", "en") == "No immediate danger"
    assert button_label(protocol, "3:danger:no", "fr") == "Non, pas de danger immédiat"
    assert button_label(protocol, "0:school:nord", "en", {"nord": "Nord"}) == "Nord"
    assert button_label(protocol, "3:confirm:call911", "en") == "I called 911"
    assert button_label(protocol, "start", "en") == "Open an incident"
    assert button_label(protocol, "cancel:mistake", "en") != "cancel:mistake"
    assert button_label(protocol, "3:devices:7", "en") == "7"
    assert button_label(protocol, "weird", "en") == "weird"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5 s"), (60, "1 min"), (90, "1 min 30 s"), (3900, "1 h 05 min"), (None, "")],
)
def test_durations(seconds: int | None, text: str) -> None:
    assert duration(None if seconds is None else timedelta(seconds=seconds)) == text


def test_median_and_90th_percentile() -> None:
    assert spread([]).count == 0
    assert spread([60.0]).median == 60.0
    figures = spread([float(m * 60) for m in range(1, 11)])
    assert figures.count == 10
    assert figures.median == 330.0
    assert figures.p90 == pytest.approx(546.0)


def test_delays_in_buckets_and_months_in_a_row() -> None:
    buckets = dict(histogram([60, 299, 300, 4000]))
    assert buckets["< 5 min"] == 2
    assert buckets["5–10 min"] == 1
    assert buckets["≥ 60 min"] == 1
    from datetime import UTC, datetime

    months = months_between(datetime(2025, 11, 3, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    assert months == ["2025-11", "2025-12", "2026-01", "2026-02"]


def test_charts_escape_their_labels() -> None:
    svg = str(bar_chart([("<script>", 3), ("B", 0)], "T & <t>"))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "<title>T &amp; &lt;t&gt;</title>" in svg
    assert str(bar_chart([], "empty")) == ""


def test_pdf_text_keeps_french_and_drops_emoji() -> None:
    assert latin("École ’ça’ — 👮 ok ✅") == "École 'ça' - ok [x]"
    assert latin("中") == "?"


def test_options_default_to_localhost_and_follow_https() -> None:
    options = DashboardOptions()
    assert options.base_url == "http://127.0.0.1:8080"
    assert not options.secure
    assert DashboardOptions(base_url="https://x.example").secure
    assert not DashboardOptions(base_url="https://x.example", secure_cookies=False).secure
    assert DashboardOptions.from_config(parse_config(TEST_CONFIG)) == DashboardOptions()


def test_the_secret_comes_from_the_environment_or_is_random_in_local_mode() -> None:
    assert len(dashboard_secret(None, local_mode=True)) == 32
    assert dashboard_secret(None, local_mode=True) != dashboard_secret("", local_mode=True)
    assert dashboard_secret("x" * 40, local_mode=False) == b"x" * 40
    with pytest.raises(ConfigError, match="SEXTO_DASHBOARD_SECRET"):
        dashboard_secret(None, local_mode=False)
    with pytest.raises(ConfigError, match="at least 32"):
        dashboard_secret("short", local_mode=False)


def test_every_text_exists_in_french_and_english() -> None:
    for key, languages in TEXTS.items():
        assert set(languages) == {"fr", "en"}, key
        assert all(value.strip() for value in languages.values()), key
        fields = [set(re.findall(r"{(\w+)}", value)) for value in languages.values()]
        assert fields[0] == fields[1], key


def test_every_text_used_exists() -> None:
    used: set[str] = set()
    for path in [*TEMPLATES.glob("*.html"), *SOURCES.glob("*.py")]:
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_]+\.[a-z_.0-9]+)["']""", path.read_text()))
    assert used, "no text found: the pattern is wrong"
    assert sorted(k for k in used - set(TEXTS) if not k.endswith(".")) == []
    families = {
        "event.": [k.value for k in EventKind],
        "chain.": [k.value for k in EscalationKind],
        "role.": [r.value for r in Role],
        "sort.": list(SORTS),
        "kind.": list(KINDS),
        "drill.command.": list(COMMANDS),
        "delivery.": ["pending", "delivered", "failed"],
        "outcome.": ["impulsive", "malicious"],
    }
    for prefix, values in families.items():
        assert [v for v in values if f"{prefix}{v}" not in TEXTS] == [], prefix
    t = Translator("en")
    assert t.get("no.such.key", "fallback") == "fallback"
    assert Translator("de").language == "fr"
